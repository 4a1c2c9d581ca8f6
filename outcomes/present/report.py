"""What a digest and a page PDF show beyond the screen's own charts, drawn the same way for both: the key
measures table, signals and alerts as tables, the signal p-charts with their sentences, and the Step-down
page's charts. Every number comes from a catalog query run with suppression and the given site scope. No
Streamlit here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd

from outcomes.catalog import grain, runner
from outcomes.catalog.query import Query
from outcomes.measures import kpis, signal_scan, signals
from outcomes.present import (
    annotation_marks,
    control_charts,
    flow_charts,
    hidden,
    rate_charts,
    signal_marks,
    theme,
    under_chart,
)
from outcomes.present import pdf as export

EVENTS = "annotations"  # the catalog query of the program events
NO_SIGNALS = "No control-chart signals reach this period."
RULES_NOTE = (
    "Signals: a point outside the 3-sigma (or Laney p′) limits, a run longer than round(log2(n) + 3) or fewer "
    "crossings than expected (Anhøj & Olesen 2014)."
)


@dataclass
class Figure:
    title: str
    figure: object  # plotly Figure
    note: str = ""
    cid: str = ""


def _note(query: Query, df: pd.DataFrame, mask: pd.DataFrame, n_col: str | None = None) -> str:
    """ "n = 1,234 eligible discharges (plus 2 hidden cells)", from the shown rows only."""
    n_col = n_col or query.chart.get("n")
    if not n_col or n_col not in df:
        return ""
    total = int(pd.to_numeric(df[n_col], errors="coerce").sum())
    hidden = int(mask[n_col].sum()) if n_col in mask else 0
    note = f"n = {total:,} {theme.label(n_col).lower()}"
    if hidden:
        note += f" (plus {hidden} hidden {'cell' if hidden == 1 else 'cells'})"  # small or protecting another
    return note


def _where(df: pd.DataFrame, mask: pd.DataFrame, where: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    keep = pd.Series(True, index=df.index)
    for col, value in where.items():
        keep &= df[col].isin(value if isinstance(value, (list, tuple, set)) else [value])
    return df[keep].reset_index(drop=True), mask[keep].reset_index(drop=True)


def analysis_note(analysis: signals.Analysis) -> str:
    """The sentence under a p-chart: its signals, or why there is none."""
    if analysis.signals:
        return "\n".join(signal_marks.sentence(s) for s in analysis.signals)
    if not analysis.enough:
        return f"No signals: {analysis.points} months shown, fewer than the {signals.MIN_POINTS} the rules need."
    if analysis.run_limit is None:
        return f"No signals: {analysis.useful} months off the centre line, fewer than the {signals.MIN_POINTS} the run rules need."
    return (
        f"No signals: longest run {analysis.longest_run} months (a run of more than {analysis.run_limit} would be "
        f"one), {analysis.crossings} crossings of the centre line (fewer than {analysis.crossings_limit} would be)."
    )


def series_chart(con, series: signals.Series, sites, scope, catalog, site_label: str, title: str, events=None):
    """A p-chart of one signals series with its signals (and `events`, the program events in view) drawn on it,
    and the lines for under it."""
    df, analysis = signal_scan.analyse_series(con, series, sites, scope, catalog, site_label)
    rows = signals.series_rows(series, df)
    fig = control_charts.rate_p_chart(rows, "month", "events", "n", title=None)
    if fig is None:
        return None, analysis
    annotation_marks.draw(fig, events)
    note = "\n".join([analysis_note(analysis), *under_chart.lines(fig, "events")])
    return Figure(title, fig, note), analysis


def events_in_view(con, catalog, scope, sites=None) -> pd.DataFrame:
    """The program events for `sites` (None: every site) within `scope`: theirs and those for all sites. None on
    a database loaded before the annotations table existed."""
    try:
        return _run(con, catalog, EVENTS, {"sites": list(sites)} if sites else {}, scope)[0]
    except (duckdb.CatalogException, KeyError):
        return pd.DataFrame(columns=["annotation_id", "start_date", "end_date", "site", "label", "category"])


def events_rows(events: pd.DataFrame, period) -> list[str]:
    """The events overlapping a period, one line each."""
    return [
        annotation_marks.line(r)
        for r in annotation_marks.rows_of(events)
        if r["start_date"] <= period.end and (r["end_date"] or r["start_date"]) >= period.start
    ]


def _run(con, catalog, name: str, params: dict, scope):
    result = runner.run(con, catalog[name], params, scope=scope)
    return result.data, result.mask


def stepdown_pages(con, catalog, scope, data_through: dt.date, events=None) -> list[export.Chart]:
    """The Step-down page's charts, from the same queries and defaults as pages/stepdown.py, with the program
    events in view (`events`, from events_in_view) on those over time."""
    out = []

    def add(title, name, params, draw, where=None, n=None, footnote=None, note_rows=None):
        result = runner.run(con, catalog[name], params, scope=scope)  # grain auto: coarsened as on the page
        df, mask, why = result.data, result.mask, result.reasons
        title = title.format(grain=grain.word(result.params.get("grain")))
        footnote = "\n".join(x for x in (*result.notes, footnote) if x) or None
        if where:
            (df, mask), why = _where(df, mask, where), (None if why is None else _where(df, why, where)[1])
        # the same legend line as on screen, in the same words
        footnote = "\n".join(x for x in (hidden.legend_line(why, catalog[name].suppress), footnote) if x)
        if df.empty:
            return
        fig = annotation_marks.draw(draw(df), events)
        if fig is None:
            return
        rows_df, rows_mask = note_rows(df, mask) if note_rows else (df, mask)
        marks = under_chart.text(fig)  # the signals and events drawn on it
        note = "\n".join(x for x in (_note(catalog[name], rows_df, rows_mask, n), marks, footnote) if x)
        out.append(export.Chart(title, fig, note))

    add(
        "14-day step-down rate by discharge {grain}",
        "stepdown_rate",
        {"window_days": 14, "grain": "auto"},
        lambda df: control_charts.rate_p_chart(
            df, "month", "stepped_down", "eligible_discharges", rate="stepdown_rate"
        ),
    )
    add(
        "14-day step-down rate by site",
        "stepdown_by_site",
        {"window_days": 14, "grain": "auto"},
        lambda df: control_charts.p_chart_grid(
            df, "site", "period", "stepped_down", "eligible_discharges", rate="stepdown_rate"
        ),
    )
    add(
        "Days from discharge to first IOP session, by discharge reason",
        "time_to_stepdown",
        {"max_day": 30},
        lambda df: flow_charts.curves(
            df,
            "day",
            "cumulative_share",
            "at_risk",
            color="reason_group",
            marks=(7, 14, 30),
            y_label="Reached IOP",
            x_label="Days after discharge",
            hover_word=" reached IOP",
        ),
        footnote=flow_charts.CURVE_NOTE,
        note_rows=lambda df, mask: _where(df, mask, {"day": 0}),
    )
    add(
        "IOP referral funnel",
        "referral_conversion",
        {},
        lambda df: flow_charts.funnel(
            df,
            {"referred": "Referred", "admitted": "Admitted", "attended_14d": "Attended ≤14 days"},
            "site",
            {"admitted": "admitted_rate", "attended_14d": "attended_rate"},
        ),
        where={"to_level_of_care": "iop"},
    )
    since = kpis.add_months(data_through.replace(day=1), -11)
    add(
        "Referred, not arrived",
        "referral_not_arrived",
        {"start": since, "grain": "auto"},
        lambda df: rate_charts.rate_heatmap(
            df, "month", "site", "not_arrived_rate", "referred", x_label="Month of referral", height=300
        ),
        footnote=f"Showing the last 12 months (from {since:%-d %b %Y}).",
    )
    add(
        "7-day follow-up after residential or withdrawal management (FUI-aligned)",
        "fui_followup",
        {"window_days": 7, "grain": "auto"},
        lambda df: control_charts.rate_p_chart(df, "month", "followed_up", "eligible_discharges", rate="followup_rate"),
    )
    return out


def tiles(con, catalog, scope, period: kpis.Period, previous: kpis.Period) -> pd.DataFrame:
    """The Overview tiles for `period` against `previous` as the summary table (kpis.summary_rows)."""
    periods = [previous, period]
    made = []
    for kpi in kpis.KPIS:
        df, _ = _run(con, catalog, kpi.query, kpi.periods_params(periods), scope)
        made.append(kpis.tile(kpi, kpi.by_period(df, periods), periods, catalog[kpi.query].unstable_below))
    now, _ = _run(con, catalog, "census", kpis.census_params(period), scope)
    then, _ = _run(con, catalog, "census", kpis.census_params(previous, weeks=1), scope)
    return kpis.summary_rows(made + kpis.census_tiles(now, then, period, previous))


def signal_rows(found: list) -> pd.DataFrame:
    """Signals as a small table for people: measure, site, signal."""
    return pd.DataFrame(
        {
            "measure": [s.label for s in found],
            "site": [s.site or "All these sites" for s in found],
            "signal": [s.sentence for s in found],
        },
        columns=["measure", "site", "signal"],
    )


def alert_rows(readings: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "alert": [r.rule.name for r in readings],
            "site": [r.site for r in readings],
            "condition": [r.rule.what for r in readings],
            "now": [r.sentence for r in readings],
        },
        columns=["alert", "site", "condition", "now"],
    )


def signal_pages(signal_table: pd.DataFrame, alert_table: pd.DataFrame) -> list[export.Chart]:
    """ "Signals this period" (signal_rows) and, when any alert holds, "Alerts" (alert_rows), as PDF pages."""
    table = signal_table
    if table.empty:
        table = pd.DataFrame({"signal": [NO_SIGNALS]})
    pages = [export.Chart("Signals this period", flow_charts.table_figure(table), RULES_NOTE)]
    if not alert_table.empty:
        pages.append(export.Chart("Alerts", flow_charts.table_figure(alert_table)))
    return pages
