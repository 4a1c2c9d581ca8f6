"""Catalog queries for a page: cached runs keyed by data version, parameters and site scope, run on threads, and the minimum population."""

from __future__ import annotations

import threading

import duckdb
import pandas as pd
import streamlit as st

from outcomes.catalog import runner
from outcomes.catalog.params import frozen
from outcomes.ingest import db
from outcomes.web.auth import current_user
from outcomes.web.database import catalog, root_connection, run_version
from outcomes.web.sidebar import active_filters

MIN_CLIENTS = 11  # a filtered view must hold at least this many distinct clients to show anything


POPULATION = "population"  # the catalog query that counts them


@st.cache_data(max_entries=1024, show_spinner=False)
def cached_run(name: str, items: tuple, version: db.DataVersion, scope: tuple | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    # Keyed on the data version, every parameter and the user's site scope; holds suppressed data only.
    result = runner.run(root_connection(version), catalog()[name], dict(items), scope=scope)
    return result.data, result.mask



def run(name: str, params: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(suppressed table, mask of hidden cells) for a catalog query, with the global filters it declares.
    Stops the page when the filters select fewer than MIN_CLIENTS clients."""
    if name != POPULATION:
        require_population()
    return _run_pinned(name, params)


def started(name: str, params: dict | None = None):
    """run(name, params) started on a thread of its own; returns a function that waits for it and gives its
    result. DuckDB runs a query without holding the GIL, so queries started together overlap each other and the
    drawing of the page. The thread only calls the cached `cached_run`, with every argument worked out here."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import (
        add_script_run_ctx,
    )

    if name != POPULATION:
        require_population()
    args = (name, frozen(given_params(name, params)), run_version(), current_user().scope)
    out: list = []

    def work() -> None:
        try:
            out.append(cached_run(*args))
        except BaseException as exc:  # raised again on the script's own thread, by result()
            out.append(exc)

    thread = add_script_run_ctx(threading.Thread(target=work, daemon=True))
    thread.start()

    def result() -> tuple[pd.DataFrame, pd.DataFrame]:
        thread.join()
        if isinstance(out[0], (db.VersionGone, duckdb.ConnectionException)):
            _start_over()
        if isinstance(out[0], BaseException):
            raise out[0]
        return out[0]

    return result


def run_many(calls: list[tuple[str, dict | None]]) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """run() for several catalog queries at once (see started)."""
    return [result() for result in [started(name, params) for name, params in calls]]


def _run_pinned(name: str, params: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        return cached_run(name, frozen(given_params(name, params)), run_version(), current_user().scope)
    except (db.VersionGone, duckdb.ConnectionException):
        _start_over()


def _start_over() -> None:
    # A reload replaced the pinned file mid-run (or two reloads closed its cached connection): start over on the
    # version now published.
    st.session_state.pop("_data_version", None)
    st.rerun()


def clients_in_view() -> int | None:
    """Distinct clients the active filters select (None when 1-10, which suppression hides)."""
    df, _ = _run_pinned(POPULATION, None)
    n = df["clients"].iloc[0] if len(df) else 0
    return None if pd.isna(n) else int(n)


def require_population() -> None:
    """The minimum population: no results at all for a view of fewer than MIN_CLIENTS clients. A view that
    passed (the same data version, population filters and site scope) is not counted again."""
    view = (run_version(), frozen(given_params(POPULATION)), current_user().scope)
    if st.session_state.get("_population_ok") == view:
        return
    n = clients_in_view()
    if n is None or n < MIN_CLIENTS:
        st.info(f"Too few clients to show: these filters select fewer than {MIN_CLIENTS} clients. "
                "Widen the filters to see results.")
        st.stop()
    st.session_state["_population_ok"] = view


def given_params(name: str, params: dict | None = None) -> dict:
    """The values a catalog query receives: the global filters it declares, then `params`; None left out."""
    query = catalog()[name]
    given = {k: v for k, v in active_filters().items() if k in query.params and v is not None}
    return given | {k: v for k, v in (params or {}).items() if v is not None}


def run_key(name: str, params: dict | None) -> tuple:
    """What decides a catalog query's rows in this run: the arguments of its cached `cached_run`."""
    return name, frozen(given_params(name, params)), run_version(), current_user().scope
