"""The Overview: KPI tiles for the period against the one before, with trends, and the active census."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from outcomes.measures import kpis
from outcomes.present import files, glossary, hidden
from outcomes.present.flow_charts import table_figure
from outcomes.present.pdf import Chart
from outcomes.web import context, export_info, prefetch
from outcomes.web.context import catalog
from outcomes.web.database import info
from outcomes.web.downloads import download
from outcomes.web.panels import table_expander
from outcomes.web.queries import cached_run, given, run_key, start
from outcomes.web.reuse import reused


def tiles() -> Callable[[], Chart]:
    """Draw the period line now and start the tiles' queries; returns the function that draws the KPI tiles
    for the period against the one before, each with its trend, then the census, and returns their summary
    for the page PDF."""
    run = context.current()
    through = info(run.version)["data_through"]
    f = run.filters
    period, default = kpis.period_from(f.get("start"), f.get("end"), through)
    periods = kpis.periods_before(period, kpis.TREND_PERIODS)  # oldest first, ending with `period`
    before = periods[-2]
    why = (
        "the last 3 full months up to the data-through date; set From and To in the sidebar for another period"
        if default
        else "from the sidebar dates"
    )
    with st.container(horizontal=True, vertical_alignment="center", wrap=False):
        st.markdown(
            f"**{period.label()}** ({why}), compared with **{before.label()}**, the period of equal "
            f"length just before. Lines: the last {len(periods)} such periods.",
            width="stretch",
        )
        with st.popover("Definitions"):
            for kpi in kpis.KPIS:
                st.markdown(f"**{kpi.label}.** {kpi.note} `queries/{kpi.query}.sql`")
            st.markdown(
                "**Active clients.** Distinct clients with an episode at the level in the week holding the "
                "period's last day. `queries/census.sql`"
            )
            st.markdown(
                "**Colours.** A change is green (better) or red (worse) only when it is larger than chance "
                "alone would give for the numbers counted (more than 3 standard errors); grey otherwise."
            )
            for term, text in glossary.terms_for(None, " ".join(k.note for k in kpis.KPIS)):
                st.markdown(f"**{term}**: {text}")
    # every KPI over all the periods in one run each (grain=periods), and both censuses, at once
    calls = [(kpi.query, kpi.periods_params(periods)) for kpi in kpis.KPIS] + [
        ("census", kpis.census_params(period)),
        ("census", kpis.census_params(before, weeks=1)),
    ]
    started = [start(name, given(name, params)) for name, params in calls]
    # the tiles are worked out once for the same rows: a rerun only draws them
    keys = [run_key(name, given(name, params)) for name, params in calls]
    key = ("tiles", tuple(keys), tuple(periods))

    def tiles_for(*args: tuple) -> None:  # the tiles for another site choice (prefetch)
        results = [cached_run(*a).view() for a in args]
        reused(("tiles", args, tuple(periods)), lambda: _tiles(results, period, before, periods))

    ahead = prefetch.Made(("tiles", tuple(periods)), tiles_for)

    def swapped(choice) -> tuple:
        return tuple(prefetch.swap_sites(k, choice) if catalog()[k[0]].takes("sites") else k for k in keys)

    prefetch.note(lambda choice: (ahead, swapped(choice)))

    def drawn() -> Chart:
        results = [result() for result in started]
        tiles, census = reused(key, lambda: _tiles(results, period, before, periods))
        return _drawn(tiles, census, period, before)

    return drawn


def _tiles(results: list, period, before, periods) -> tuple[list, list]:
    """(the KPI tiles, the census tiles) of the tiles' query results."""
    *results, now, then = results
    now, then = (_tagged(r, "active_clients", None, count=True) for r in (now, then))
    tiles = [
        kpis.tile(
            kpi, kpi.by_period(_tagged(rows, kpi.value, kpi.n), periods), periods, catalog()[kpi.query].unstable_below
        )
        for kpi, rows in zip(kpis.KPIS, results)
    ]
    return tiles, kpis.census_tiles(now, then, period, before)


def _drawn(tiles: list, census: list, period, before) -> Chart:
    for col, tile in zip(st.columns(len(kpis.KPIS), gap="xsmall"), tiles):
        _metric(col, tile)
    st.subheader("Active clients by level of care")
    st.caption(
        f"Clients in care in the week of {period.end:%-d %b %Y}, against the week of {before.end:%-d %b %Y}; "
        f"lines: the {kpis.CENSUS_WEEKS} weeks up to it."
    )
    if not census:
        st.info("No episodes match these filters.")
    else:
        for col, tile in zip(st.columns(max(len(census), 5)), census):
            _metric(col, tile)
    summary = kpis.summary_rows(tiles + census)
    key = ("summary", summary.to_csv())  # ten short rows: cheaper to key on than to draw again
    chart = Chart(
        f"Key measures, {period.label()} against {before.label()}",
        reused(key, lambda: table_figure(summary)),
        "Each value is the output of its catalog query for these dates and filters; counts of 1–10 are hidden.",
        repr(key),
    )
    with st.container(horizontal=True, vertical_alignment="top"):
        with (box := table_expander("overview")):
            if box.open:
                st.table(summary, hide_index=True, alt="Key measures: this period against the one before")
        download(
            "CSV",
            lambda: files.to_csv(summary),
            export_info.file_name("overview", "csv"),
            "text/csv",
            key="csv-overview",
            query="overview",
            params={"start": period.start, "end": period.end},
            rows=len(summary),
        )
    return chart


def _tagged(rows, value: str, n: str | None, count: bool = False):
    """The rows with the labels their hidden value and n read by on a tile (kpis.VALUE_TAG, kpis.N_TAG)."""
    df, _, why = rows
    tags = {kpis.VALUE_TAG: [hidden.tag(w, count=count) for w in hidden.reason_of(why, df.index, [value])]}
    if n:
        tags[kpis.N_TAG] = [hidden.tag(w, count=True) for w in hidden.reason_of(why, df.index, [n])]
    return df.assign(**tags)


def _metric(col, tile) -> None:
    # a hidden value stays a gap (NaN breaks the line), so the line never joins across a hidden week
    trend = [float("nan") if v is None else v for v in tile.trend]
    col.metric(
        tile.label,
        tile.value,
        tile.delta,
        delta_color=tile.delta_color,
        border=True,
        chart_data=trend if sum(v is not None for v in tile.trend) >= 2 else None,
        chart_type="line",
    )
    col.caption(tile.note, help=tile.help)  # the help here, not on the title: the title keeps the tile's width
