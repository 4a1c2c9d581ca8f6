"""What one recipient's digest holds, and the Overview's signals and alerts, from suppressed results limited to
their sites."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import pandas as pd

from outcomes.catalog import runner
from outcomes.catalog.query import Query, load_catalog
from outcomes.deliver import alerts as alerting
from outcomes.deliver.schedule import Recipient
from outcomes.measures import kpis, signal_scan, signals
from outcomes.present import flow_charts
from outcomes.present import pdf as export
from outcomes.present.report import (
    alert_rows,
    events_in_view,
    events_rows,
    series_chart,
    signal_pages,
    signal_rows,
    stepdown_pages,
    tiles,
)

KEY_SERIES = ("stepdown_14", "followup_7")  # always drawn in the message
MAX_INLINE = 4  # charts in the message body


@dataclass
class Digest:
    recipient: Recipient
    period: kpis.Period
    previous: kpis.Period
    data_through: dt.date
    enough: bool  # the view holds at least 11 clients; otherwise the message holds no numbers
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    signals: list = field(default_factory=list)  # current signals
    older_signals: int = 0
    alerts: list = field(default_factory=list)  # alerting.Reading that hold
    events: list = field(default_factory=list)  # lines: the program events overlapping the period
    inline: list = field(default_factory=list)  # Figure, drawn in the body
    pages: list = field(default_factory=list)  # export.Chart for the PDF

    @property
    def figures(self) -> list:
        """Every figure the message and its PDF draw (for checks)."""
        return [f.figure for f in self.inline] + [c.figure for c in self.pages]


def build(
    con,
    recipient: Recipient,
    period: kpis.Period,
    *,
    catalog: dict[str, Query] | None = None,
    rules: list | None = None,
    readings: dict | None = None,
    draw: bool = True,
) -> Digest:
    """Everything one recipient's message shows, from suppressed results limited to their sites.

    `readings` (rule name -> alerting.Reading list, from this run's evaluation) saves evaluating the rules again.
    With `draw` False the figures are left out (for the page, which draws its own)."""
    catalog = catalog or load_catalog()
    scope = recipient.scope
    through = runner.data_through_of(con)
    previous = kpis.previous_period(period)
    digest = Digest(recipient, period, previous, through, signal_scan.population_ok(con, catalog, None, scope))
    if not digest.enough:
        return digest
    digest.summary = tiles(con, catalog, scope, period, previous)
    in_view = events_in_view(con, catalog, scope)
    digest.events = events_rows(in_view, period)
    found = signal_scan.scan(con, None, scope, catalog)
    digest.signals = signal_scan.current(found, period.start)
    digest.older_signals = len(found) - len(digest.signals)
    for rule in rules or []:
        if recipient.name not in rule.recipients:
            continue
        got = (readings or {}).get(rule.name)
        if got is None:
            got = alerting.evaluate(con, rule, catalog, through, scope)
        digest.alerts += [r for r in got if r.holds and (scope is None or r.site in scope)]
    if not draw:
        return digest
    whole = None if scope is None or len(scope) > 1 else list(scope)
    whole_label = "" if whole is None else whole[0]
    wanted = [(signals.SERIES_BY_KEY[k], whole, whole_label) for k in KEY_SERIES]
    for s in digest.signals:
        key = (signals.SERIES_BY_KEY[s.measure], [s.site] if s.site else whole, s.site)
        if all((w[0].key, w[2]) != (key[0].key, key[2]) for w in wanted):
            wanted.append(key)
    for series, sites, label in wanted[:MAX_INLINE]:
        where = label or (recipient.sites_text() if scope is not None else "all sites")
        title = f"{series.label}, {where}: monthly p-chart"
        shown = in_view if sites is None else events_in_view(con, catalog, scope, sites)
        fig, _ = series_chart(con, series, sites, scope, catalog, label, title, shown)
        if fig is not None:
            fig.cid = f"chart{len(digest.inline) + 1}.{hashlib.sha256(recipient.name.encode()).hexdigest()[:8]}"
            digest.inline.append(fig)
    digest.pages = [
        export.Chart(
            f"Key measures, {period.label()} against {previous.label()}",
            flow_charts.table_figure(digest.summary),
            "Each value is the output of its catalog query for these dates and your sites; counts of 1–10 are hidden.",
        )
    ]
    digest.pages += signal_pages(signal_rows(digest.signals), alert_rows(digest.alerts))
    digest.pages += stepdown_pages(con, catalog, scope, through, in_view)
    return digest


def overview_rows(
    con,
    scope,
    period: kpis.Period,
    rules: list | None = None,
    catalog: dict[str, Query] | None = None,
    sites: list[str] | None = None,
    keep=signal_scan.unkept,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Overview's "Signals this period" (measure, site, signal) and "Alerts" (alert, site, condition, now)
    rows for `sites` (None: every site) within a user's sites (`scope` None: every site), from suppressed
    results; empty when the view holds fewer than 11 clients. `keep`: see signal_scan.scan."""
    catalog = catalog or load_catalog()
    if not signal_scan.population_ok(con, catalog, sites, scope):
        return signal_rows([]), alert_rows([])
    found = signal_scan.current(signal_scan.scan(con, sites, scope, catalog, keep=keep), period.start)
    through = runner.data_through_of(con)
    within = tuple(sites) if sites else scope
    holding = [r for rule in rules or [] for r in alerting.evaluate(con, rule, catalog, through, within) if r.holds]
    return signal_rows(found), alert_rows(holding)
