"""The Overview's "Signals this period" and "Alerts": control-chart signals on every monthly rate series and the
alert rules that hold, for the user's sites (or the sites chosen in the sidebar, within them)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd
import streamlit as st

from outcomes.deliver import alerts, contents, schedule
from outcomes.ingest import db
from outcomes.kept import Kept
from outcomes.measures import kpis
from outcomes.present import report
from outcomes.present.pdf import Chart
from outcomes.web import context, database, prefetch, queries
from outcomes.web.chart_notes import plain
from outcomes.web.database import info, root_connection


def _stamp(*paths) -> tuple:
    return tuple(p.stat().st_mtime_ns if p.exists() else None for p in paths)


_views = Kept(512)  # each view's population check and series result: one site's view serves every choice holding it


@st.cache_data(max_entries=64, show_spinner=False)
def rows(version: db.DataVersion, scope: tuple | None, sites: tuple | None, period: kpis.Period, stamp: tuple):
    """(signals, alerts, problem): the Overview's two tables for the sites chosen (None: all) within a user's
    scope, and why alerts could not be read."""
    problem = ""
    rules = []
    try:
        if schedule.DEFAULT_CONFIG.exists() and alerts.DEFAULT_ALERTS.exists():
            people = schedule.load_digests().by_name()
            rules = alerts.load_alerts(None, people, database.catalog())
    except (schedule.DigestConfigError, alerts.AlertConfigError) as exc:
        logging.getLogger(__name__).error("overview alerts: %s", exc)
        problem = "The alert rules could not be read (see the server log); no alerts are shown."
    # not the run's catalog: this also runs on the prefetch thread, outside any session
    found, holding = contents.overview_rows(
        root_connection(version),
        scope,
        period,
        rules,
        database.catalog_seen(),
        list(sites) if sites else None,
        lambda key, make: _views.get((version, key), make),
    )
    return found, holding, problem


def clear() -> None:
    """Forget every kept view (a benchmark's cold start)."""
    _views.clear()


def start() -> Callable[[], list[Chart]]:
    """Start working out both lists on a thread (beside the tiles' queries); returns the function that draws
    them and returns them as pages for the page PDF."""
    run = context.current()
    f = run.filters
    period, _ = kpis.period_from(f.get("start"), f.get("end"), info(run.version)["data_through"])
    chosen = f.get("sites")
    args = (
        run.version,
        run.scope,
        tuple(chosen) if chosen else None,  # within the user's sites already
        period,
        _stamp(schedule.DEFAULT_CONFIG, alerts.DEFAULT_ALERTS),
    )
    prefetch.note(lambda choice: (rows, (run.version, run.scope, tuple(choice) if choice else None, *args[3:])))
    waited = queries.on_thread(rows, *args)

    def draw() -> list[Chart]:
        with st.spinner("Checking the control charts…"):
            got = waited()
        if isinstance(got, BaseException):
            raise got
        return _draw(*got, period)

    return draw


def _draw(found: pd.DataFrame, holding: pd.DataFrame, problem: str, period: kpis.Period) -> list[Chart]:
    st.subheader("Signals this period")
    st.caption(
        f"Control-chart signals on the monthly p-charts reaching into {period.label()}, for each site and for "
        "these sites together (all dates, other filters not applied). " + report.RULES_NOTE
    )
    _listed(found, ("measure", "site"), "signal", report.NO_SIGNALS)
    st.subheader("Alerts")
    st.caption("Alert rules from config/alerts.toml that hold for these sites in the last full month.")
    if problem:
        st.warning(problem)
    _listed(holding, ("condition", "site"), "now", "No alert holds for these sites.")
    return report.signal_pages(found, holding)


def _listed(table: pd.DataFrame, head: tuple[str, str], body: str, empty: str) -> None:
    if table.empty:
        st.info(empty)
        return
    st.markdown(
        "\n".join(
            f"- **{plain(row[head[0]])}, {plain(row[head[1]])}:** {plain(row[body])}." for _, row in table.iterrows()
        )
    )
