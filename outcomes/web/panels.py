"""Director pages: the page heading, chart panels from suppressed data with n and unstable notes, tables and CSV."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from outcomes.catalog.query import Query
from outcomes.measures import kpis
from outcomes.present import charts, files
from outcomes.present.tables import format_table
from outcomes.web.database import catalog, info, run_version
from outcomes.web.downloads import download
from outcomes.web.page import page
from outcomes.web.queries import given_params, require_population, run_key, started
from outcomes.web.reuse import chart_key, reused
from outcomes.web.sidebar import active_filters, filters_text

ALL_HIDDEN = "Every value here is a small cell (1–10) and is hidden; widen the filters or the date range."


def report_page(title: str) -> None:
    """Start a director page: the title, what data and filters it shows, and an empty list for its PDF."""
    page(title)
    st.session_state["add_to_pdf"] = {"title": title, "charts": []}
    through = info(run_version())["data_through"]
    st.caption(f"Data through **{through:%d %b %Y}** · {filters_text()} · the page address keeps these filters")
    require_population()


def add_to_pdf(title: str, fig, note: str = "", key: tuple | None = None) -> None:
    """Add a chart to the page PDF. `key` is the key the figure was built under (see reused), which stands for
    the figure in the PDF's stamp; without it the figure's JSON does."""
    from outcomes.present import pdf as export

    report = st.session_state.setdefault("add_to_pdf", {"title": "", "charts": []})
    report["charts"].append(export.Chart(title, fig, note))
    report.setdefault("stamps", []).append(title + (repr(key) if key else fig.to_json()))



def heading(query: Query, title: str | None) -> None:
    """Title with the Definition popover beside it (fits half-width columns), then a one-line definition."""
    with st.container(horizontal=True, vertical_alignment="center", wrap=False):
        st.subheader(title or query.title, width="stretch")
        with st.popover("Definition"):
            st.markdown(f"**{query.title}**\n\n{query.description}")
            if query.definition:
                st.markdown(query.definition.replace("\n", "  \n"))
            st.caption(f"Query: `queries/{query.path.name}`")
    st.caption(query.lead)


def _n_note(query: Query, df: pd.DataFrame, mask: pd.DataFrame, n_col: str | None = None,
            n_at: dict | None = None) -> str:
    """"n = 1,234 eligible discharges (plus 2 hidden cells of 1–10) · 3 points with n under 30: unstable"."""
    n_col = n_col or query.chart.get("n")
    if not n_col or n_col not in df:
        return ""
    rows, hidden_rows = df, mask
    if n_at:
        keep = pd.Series(True, index=df.index)
        for col, value in n_at.items():
            keep &= df[col] == value
        rows, hidden_rows = df[keep], mask[keep]
    hidden = int(hidden_rows[n_col].sum()) if n_col in hidden_rows else 0
    total = int(pd.to_numeric(rows[n_col], errors="coerce").sum())
    words = charts.label(n_col).lower()
    if words.split()[-1].isdigit():  # discharges_30: discharges with a complete 30-day window
        words = f"{' '.join(words.split()[:-1])} ({words.split()[-1]}-day window)"
    note = f"n = {total:,} {words}" + (" at the start" if n_at else "")
    if hidden:
        note += f" (plus {hidden} hidden {'cell' if hidden == 1 else 'cells'} of 1–10)"
    if query.suppress.get("rates") or query.suppress.get("stats"):
        if n_at:
            note += f" · dotted where fewer than {query.unstable_below} remain: unstable"
        else:
            unstable = charts.unstable_count(df, n_col, query.unstable_below)
            if unstable:
                note += (f" · {unstable} {'value' if unstable == 1 else 'values'} with n under "
                         f"{query.unstable_below}: unstable (hollow, hatched or in brackets)")
    return note


def _rows(df: pd.DataFrame, mask: pd.DataFrame, where: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not where:
        return df, mask
    keep = pd.Series(True, index=df.index)
    for col, value in where.items():
        keep &= df[col].isin(value if isinstance(value, (list, tuple, set)) else [value])
    return df[keep].reset_index(drop=True), mask[keep].reset_index(drop=True)


def table_expander(key: str):
    """The "Table" expander under a chart. Its content runs only while it is open (opening it reruns the page),
    so a closed table costs a rerun nothing; session state `table-KEY` holds whether it is open."""
    return st.expander("Table", width="stretch", key=f"table-{key}", on_change="rerun")


def _table_and_csv(df: pd.DataFrame, mask: pd.DataFrame, query: Query, name: str, params: dict | None,
                   key: str, rows: tuple) -> None:
    with st.container(horizontal=True, vertical_alignment="top"):
        with (box := table_expander(key)):
            if box.open:
                table = reused(("table", query.path, repr(query.suppress), rows), lambda: format_table(df, mask, query))
                st.dataframe(table, hide_index=True, width="stretch")
        download("CSV", lambda: files.to_csv(df), f"{key}.csv", "text/csv", key=f"csv-{key}",
                 query=name, params=given_params(name, params), rows=len(df))


def _recent(params: dict, months: int | None, weeks: int | None) -> tuple[dict, str]:
    # a long history makes some charts unreadable: without sidebar dates they show the recent part only
    f = active_filters()
    if not (months or weeks) or f.get("start") or f.get("end"):
        return params, ""

    through = info(run_version())["data_through"]
    if months:
        start = kpis.add_months(through.replace(day=1), -(months - 1))
        span = f"the last {months} months"
    else:
        start = through - dt.timedelta(days=through.weekday()) - dt.timedelta(weeks=weeks - 1)
        span = f"the last {weeks} weeks"
    return params | {"start": start}, f"Showing {span} (from {start:%-d %b %Y}); set From and To in the sidebar for another range."


def panel(name: str, params: dict | None = None, *, title: str | None = None, empty: str | None = None,
          chart=None, where: dict | None = None, key: str | None = None, footnote: str | None = None,
          n: str | None = None, n_at: dict | None = None, recent_months: int | None = None,
          recent_weeks: int | None = None) -> None:
    """One chart on a director page: title, definition, n and unstable note, the chart, a table and its CSV.

    `chart` draws the (suppressed) rows, e.g. `lambda df: charts.rate_lines(df, ...)`; default: the chart the
    query header declares. `where` keeps rows whose columns hold the given values; `n_at` picks the rows whose
    n is the population (e.g. day 0 of a curve). Without sidebar dates, `recent_months`/`recent_weeks` limit
    the range. The chart, its notes and the footnote also go into the page PDF.

    The title is drawn at once and the query started on a thread of its own; the rest is drawn in its place
    once the page's queries are all started, by pdf_export() (which every director page ends with), so that
    the queries of a page run together.
    """
    query = catalog()[name]
    key = key or name
    heading(query, title)
    params, since = _recent(dict(params or {}), recent_months, recent_weeks)
    if since:
        st.caption(since)
    holder = st.container()
    result = started(name, params)

    def draw() -> None:
        with holder:
            _panel_body(query, name, params, result, since, title=title, empty=empty, chart=chart, where=where,
                        key=key, footnote=footnote, n=n, n_at=n_at)

    st.session_state.setdefault("add_to_pdf", {"title": "", "charts": []}).setdefault("pending", []).append(draw)


def _panel_body(query: Query, name: str, params: dict, result, since: str, *, title, empty, chart, where, key,
                footnote, n, n_at) -> None:
    df, mask = _rows(*result(), where)
    if df.empty:
        st.info(empty or "No data match these filters.")
        return
    rows = (run_key(name, params), repr(where))  # the same run and the same `where` give the same rows
    note = reused(("note", query.path, repr(query.chart), repr(query.suppress), query.unstable_below, n, repr(n_at),
                   rows), lambda: _n_note(query, df, mask, n, n_at))
    if note:
        st.caption(note)
    how = chart_key(chart) if chart else ("declared", query.path, repr(query.chart))
    fig_key = how and ("chart", how, rows)
    fig = reused(fig_key, lambda: chart(df) if chart else charts.figure(query, df))
    if fig is None:
        st.info(ALL_HIDDEN)
    else:
        st.plotly_chart(fig, width="stretch", key=f"chart-{key}", config={"displaylogo": False})
        add_to_pdf(title or query.title, fig, "\n".join(x for x in (since, note, footnote) if x), fig_key)
    if footnote:
        st.caption(footnote)
    _table_and_csv(df, mask, query, name, params, key, rows)


def draw_panels() -> None:
    """Draw the panels started on this page so far, in page order (each waits for its query)."""
    pending = (st.session_state.get("add_to_pdf") or {}).get("pending") or []
    while pending:
        pending.pop(0)()


def benchmark_toggle(label: str, key: str) -> bool:
    """A switch for a benchmark line, on by default and kept in the page address."""
    return st.toggle(label, value=True, key=key, bind="query-params")
