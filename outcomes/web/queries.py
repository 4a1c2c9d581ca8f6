"""Catalog queries for a page: cached runs keyed by data version, parameters and site scope, run on threads,
and the minimum population a view must hold before anything is shown."""

from __future__ import annotations

import threading
from typing import NamedTuple

import duckdb
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx

from outcomes.catalog import runner
from outcomes.catalog.params import frozen
from outcomes.ingest import db
from outcomes.privacy import overlap
from outcomes.web import context, database, prefetch
from outcomes.web.audit import log_run
from outcomes.web.context import catalog
from outcomes.web.database import info, root_connection

MIN_CLIENTS = 11  # a filtered view must hold at least this many distinct clients to show anything
POPULATION = "population"  # the catalog query that counts them


class _Frames(NamedTuple):
    data: pd.DataFrame  # suppressed: hidden cells are missing
    mask: pd.DataFrame  # which cells are hidden
    reasons: pd.DataFrame  # why: suppress.SMALL or suppress.COMPLEMENT, "" where shown


class Rows(_Frames):
    """A catalog query's rows as a page may show them: (data, mask, reasons), and, beside them, `notes` (what the
    run changed to keep cells visible: a coarser grain, categories merged) and `grain` (what `auto` chose)."""

    def __new__(cls, data, mask, reasons, notes: tuple = (), grain: str | None = None):
        self = super().__new__(cls, data, mask, reasons)
        self.notes, self.grain = tuple(notes), grain
        return self

    def view(self) -> Rows:
        """The same rows in frames of the caller's own: under pandas' copy-on-write a change to them copies
        first, so what the cache holds never changes."""
        return Rows(*(f.copy(deep=False) for f in self), notes=self.notes, grain=self.grain)


# A resource cache, not a data cache: a data cache unpickles its value on every hit, which for a page's dozen
# queries was a third of a cached rerun. Callers get `view()`s, so nothing they do reaches the cached frames.
@st.cache_resource(max_entries=1024, show_spinner=False)
def cached_run(name: str, items: tuple, version: db.DataVersion, scope: tuple | None) -> Rows:
    # Keyed on the data version, every parameter and the user's site scope; holds suppressed data only.
    result = runner.run(
        root_connection(version),
        database.catalog_seen()[name],  # not the run's: this also runs on the prefetch thread, outside any session
        dict(items),
        scope=scope,
        data_through=info(version)["data_through"],
    )
    return Rows(result.data, result.mask, result.reasons, tuple(result.notes), result.params.get("grain"))


def given(name: str, params: dict | None = None) -> dict:
    """The values a catalog query receives: the sidebar filters it takes, then `params`; None left out."""
    query = catalog()[name]
    sidebar = {k: v for k, v in context.current().filters.items() if query.takes(k) and v is not None}
    return sidebar | {k: v for k, v in (params or {}).items() if v is not None}


def run_key(name: str, values: dict) -> tuple:
    """What decides a catalog query's rows in this run: the arguments of its cached run."""
    run = context.current()
    return name, frozen(values), run.version, run.scope


def run(name: str, values: dict) -> Rows:
    """The rows of a catalog query for `values` (see `given`). Stops the page when the filters select fewer
    than MIN_CLIENTS clients."""
    if name != POPULATION:
        require_population()
    key = run_key(name, values)
    if catalog()[name].takes("sites"):
        prefetch.note(lambda choice: (cached_run, prefetch.swap_sites(key, choice)))
    try:
        rows = cached_run(*key)
    except (db.VersionGone, duckdb.ConnectionException):
        context.restart()
    except overlap.Differencing as exc:
        refuse(exc)
    record_run(key, rows)
    return rows.view()


def record_run(key: tuple, result) -> None:
    """Log a run a person asked for (see web.audit.log_run); `result` is Rows or holds them as `.rows`."""
    name, _, _, _ = key
    rows = result if isinstance(result, Rows) else result.rows
    if name != POPULATION:  # the minimum-population check is not a run anyone asked for
        log_run(key, name, dict(key[1]), len(rows.data), int(rows.mask.to_numpy().sum()))


def start(name: str, values: dict, cached=None):
    """run(name, values) started on a thread of its own; returns a function that waits for it and gives its
    rows (or what `cached`, a cached function of run_key's values, returns). DuckDB runs a query without
    holding the GIL, so queries started together overlap each other, the minimum-population count and the
    drawing of the page; the rows are given only once the view has passed that count. The thread only calls
    the cached run, with every argument worked out here."""
    args = run_key(name, values)
    cached = cached or cached_run  # looked up at call time, not bound when the module loads
    if catalog()[name].takes("sites"):
        prefetch.note(lambda choice: (cached, prefetch.swap_sites(args, choice)))
    known = _known()
    got = known.get((cached, args))
    waited = (lambda: got) if got is not None else on_thread(_remembered, cached, args)

    def result() -> Rows:
        if name != POPULATION:
            require_population()
        got = waited()
        if isinstance(got, (db.VersionGone, duckdb.ConnectionException)):
            context.restart()
        if isinstance(got, overlap.Differencing):
            refuse(got)
        if isinstance(got, BaseException):
            raise got
        record_run(args, got)
        return got.view()  # Rows, or what `cached` returns: a result with its own view()

    return result


@st.cache_resource(show_spinner=False)
def _known() -> dict:
    """The latest results of cached runs by (function, arguments): a rerun that finds its rows here starts no
    thread for them. Cleared with Streamlit's caches; holds what those caches hold."""
    return {}


_KNOWN_MAX = 1024


def _remembered(cached, args: tuple):
    got = cached(*args)
    known = _known()
    known[(cached, args)] = got  # a dict's single assignment is atomic; sessions run in threads of their own
    while len(known) > _KNOWN_MAX:
        try:
            known.pop(next(iter(known)))
        except (KeyError, RuntimeError, StopIteration):  # another thread changed it meanwhile
            break
    return got


def on_thread(fn, *args):
    """fn(*args) started on a thread of its own, in this script run's context; returns the function that waits
    for it and gives what it returned, or the exception it raised (to raise on the script's own thread)."""
    out: list = []

    def work() -> None:
        try:
            out.append(fn(*args))
        except BaseException as exc:
            out.append(exc)

    thread = add_script_run_ctx(threading.Thread(target=work, daemon=True))
    thread.start()

    def waited():
        thread.join()
        return out[0]

    return waited


def refuse(exc: overlap.Differencing) -> None:
    """Stop the page: its filters leave out 1 to 10 clients of a wider view (outcomes.privacy.overlap)."""
    st.info(str(exc))
    st.stop()


def run_many(calls: list[tuple[str, dict | None]]) -> list[Rows]:
    """The rows of several catalog queries (name, params), run at once (see start)."""
    return [result() for result in [start(name, given(name, params)) for name, params in calls]]


def clients_in_view() -> int | None:
    """Distinct clients the active filters select (None when 1-10, which suppression hides)."""
    df = run(POPULATION, given(POPULATION)).data
    n = df["clients"].iloc[0] if len(df) else 0
    return None if pd.isna(n) else int(n)


def count_population() -> None:
    """Start the minimum-population count of this run's view on a thread, for require_population to wait for
    (a cached run computes once however many ask)."""
    view = run_key(POPULATION, given(POPULATION))
    if st.session_state.get("_population_ok") != view:
        start(POPULATION, dict(view[1]))


def require_population() -> None:
    """The minimum population: no results at all for a view of fewer than MIN_CLIENTS clients. A view that
    passed (the same data version, population filters and site scope) is not counted again."""
    view = run_key(POPULATION, given(POPULATION))
    if st.session_state.get("_population_ok") == view:
        return
    n = clients_in_view()
    if n is None or n < MIN_CLIENTS:
        st.info(
            f"Too few clients to show: these filters select fewer than {MIN_CLIENTS} clients. "
            "Widen the filters to see results."
        )
        st.stop()
    st.session_state["_population_ok"] = view
