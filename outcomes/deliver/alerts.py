"""Alert rules (`config/alerts.toml`) and their evaluation on suppressed monthly results.

    [[alerts]]
    name = "stepdown-low"               # unique; names the alert in messages and in the state file
    query = "stepdown_rate"             # a catalog query with a month column ...
    rate = "stepdown_rate"              # ... and this rate, declared under suppress: rates (its counts draw the chart)
    params = { window_days = 14 }       # optional query parameters
    where = { level_of_care = "iop" }   # optional: keep rows whose columns hold these values
    sites = ["Northside"]               # or "*" for every site; each site is its own alert
    condition = "below"                 # "below" or "above" a threshold, or "signal"
    threshold = 0.40                    # a share (0.40 = 40%); not for "signal"
    recipients = ["Northside director"] # names from config/digests.toml; each must see every site of the rule

A rule holds for a site when the rate of the last full month up to the data-through date is below (above) the
threshold, or, for "signal", when a signal (see outcomes.signals) reaches that month. A hidden value, or a view
of fewer clients than the screen would show, holds neither way: the alert keeps its state.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from outcomes.catalog import runner
from outcomes.catalog.query import Query
from outcomes.measures import kpis, signal_scan, signals
from outcomes.paths import ROOT

DEFAULT_ALERTS = ROOT / "config" / "alerts.toml"
CONDITIONS = ("below", "above", "signal")
KEYS = {"name", "query", "rate", "params", "where", "sites", "condition", "threshold", "recipients", "label"}


class AlertConfigError(Exception):
    """The alerts file is malformed; the message names the entry."""


@dataclass(frozen=True)
class Rule:
    name: str
    query: str
    rate: str
    condition: str
    threshold: float | None
    recipients: tuple[str, ...]
    sites: tuple[str, ...] | None  # None: every site
    params: dict = field(default_factory=dict)
    where: dict = field(default_factory=dict)
    label: str = ""

    @property
    def what(self) -> str:
        """The condition in words: "14-day step-down below 40.0%"."""
        name = self.label or self.rate.replace("_", " ")
        if self.condition == "signal":
            return f"{name}: a control-chart signal"
        return f"{name} {self.condition} {self.threshold:.1%}"

    def series(self, catalog: dict[str, Query]) -> signals.Series:
        """The rule's measure as a signals.Series: the rate's declared numerator and denominator."""
        num, den = catalog[self.query].suppress["rates"][self.rate]
        return signals.Series(
            self.name, self.label or self.rate, self.query, self.params, num, den, self.rate, self.where
        )


@dataclass
class Reading:
    """A rule on one site: whether it holds (None: cannot tell), the value and month looked at, and the rows."""

    rule: Rule
    site: str
    holds: bool | None
    month: dt.date | None
    value: float | None
    sentence: str
    rows: pd.DataFrame | None = None  # month, events, n (suppressed) for the chart
    analysis: signals.Analysis | None = None


def parse_alerts(text: str, source: str, recipients: dict, catalog: dict[str, Query]) -> list[Rule]:
    """The rules in the TOML text of an alerts file. `recipients` maps digest names to their Recipient (for
    scope checks). Raises AlertConfigError naming the entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AlertConfigError(f"{source}: not valid TOML: {exc}") from None
    if set(data) - {"alerts"}:
        raise AlertConfigError(f"{source}: unknown top-level keys {sorted(set(data) - {'alerts'})} (only [[alerts]])")
    entries = data.get("alerts", [])
    if not isinstance(entries, list):
        raise AlertConfigError(f"{source}: alerts must be an array of tables ([[alerts]])")
    rules, seen = [], set()
    for i, entry in enumerate(entries, start=1):
        where = f"{source}: alert {i}" + (
            f" ({entry.get('name')!r})" if isinstance(entry, dict) and entry.get("name") else ""
        )
        if not isinstance(entry, dict):
            raise AlertConfigError(f"{where}: must be a table")
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise AlertConfigError(f"{where}: unknown keys {unknown} (known: {', '.join(sorted(KEYS))})")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise AlertConfigError(f"{where}: name is required")
        if name in seen:
            raise AlertConfigError(f"{where}: the name {name!r} is used twice")
        seen.add(name)
        query = entry.get("query")
        if query not in catalog:
            raise AlertConfigError(f"{where}: query {query!r} is not in the catalog (`python -m outcomes list`)")
        rates = catalog[query].suppress.get("rates") or {}
        rate = entry.get("rate")
        if rate not in rates:
            raise AlertConfigError(
                f"{where}: rate must be one of {query}'s rates ({', '.join(rates) or 'none'}), not {rate!r}"
            )
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise AlertConfigError(f"{where}: params must be a table")
        try:
            runner.bind(catalog[query], params)
        except ValueError as exc:
            raise AlertConfigError(f"{where}: {exc}") from None
        if "sites" in params or params.get("grain", "month") != "month":
            raise AlertConfigError(f"{where}: sites come from the rule's sites, and rows must be monthly (grain month)")
        grain = catalog[query].params.get("grain")
        if grain is not None:
            if "month" not in (grain.choices or ()):
                raise AlertConfigError(f"{where}: {query} has no monthly rows")
            params = params | {"grain": "month"}
        filt = entry.get("where", {})
        if not isinstance(filt, dict):
            raise AlertConfigError(f"{where}: where must be a table of column = value")
        condition = entry.get("condition")
        if condition not in CONDITIONS:
            raise AlertConfigError(f"{where}: condition must be one of {', '.join(CONDITIONS)}, not {condition!r}")
        threshold = entry.get("threshold")
        if condition == "signal":
            if threshold is not None:
                raise AlertConfigError(f"{where}: a signal condition takes no threshold")
        elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise AlertConfigError(f"{where}: threshold must be a share from 0 to 1 (0.4 for 40%), not {threshold!r}")
        sites = entry.get("sites")
        if sites == "*":
            sites = None
        elif isinstance(sites, list) and sites and all(isinstance(s, str) and s.strip() for s in sites):
            sites = tuple(dict.fromkeys(s.strip() for s in sites))
        else:
            raise AlertConfigError(f'{where}: sites must be "*" or a non-empty list of site names')
        names = entry.get("recipients")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise AlertConfigError(f"{where}: recipients must be a non-empty list of names from the digests file")
        for n in names:
            person = recipients.get(n)
            if person is None:
                raise AlertConfigError(f"{where}: recipient {n!r} is not in the digests file")
            # fail closed: an alert never tells anyone about a site they could not see on screen
            if person.sites is not None and (sites is None or set(sites) - set(person.sites)):
                outside = "every site" if sites is None else ", ".join(sorted(set(sites) - set(person.sites)))
                raise AlertConfigError(f"{where}: recipient {n!r} may not see {outside}")
        label = entry.get("label", "")
        if not isinstance(label, str):
            raise AlertConfigError(f"{where}: label must be text")
        rules.append(
            Rule(
                name.strip(),
                query,
                rate,
                condition,
                None if threshold is None else float(threshold),
                tuple(dict.fromkeys(names)),
                sites,
                dict(params),
                dict(filt),
                label,
            )
        )
    return rules


def load_alerts(path: str | Path | None, recipients: dict, catalog: dict[str, Query]) -> list[Rule]:
    """The rules in the alerts file; no file, no rules."""
    path = Path(path or DEFAULT_ALERTS)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return parse_alerts(text, path.name, recipients, catalog)


def check_sites(rules: list[Rule], known: list[str]) -> None:
    """Every rule's sites exist in the data (a misspelt site would never fire)."""
    for rule in rules:
        missing = [s for s in rule.sites or () if s not in known]
        if missing:
            raise AlertConfigError(f"alert {rule.name!r}: unknown sites {missing} (the data has {', '.join(known)})")


def last_full_month(data_through: dt.date) -> dt.date:
    """The first day of the last calendar month complete by the data-through date."""
    end = (
        data_through
        if data_through == kpis.month_end(data_through)
        else data_through.replace(day=1) - dt.timedelta(days=1)
    )
    return end.replace(day=1)


def evaluate(
    con, rule: Rule, catalog: dict[str, Query], data_through: dt.date, scope=None, sites: list[str] | None = None
) -> list[Reading]:
    """The rule on each of its sites (within `scope`, and `sites` when given), from suppressed results."""
    names = list(rule.sites) if rule.sites is not None else signal_scan.sites_of(con)
    if scope is not None:
        names = [s for s in names if s in scope]
    if sites is not None:
        names = [s for s in names if s in sites]
    series = rule.series(catalog)
    month = last_full_month(data_through)
    out = []
    for site in names:
        if not signal_scan.population_ok(con, catalog, [site], scope):
            out.append(Reading(rule, site, None, month, None, f"{site}: too few clients to show"))
            continue
        try:
            df, analysis = signal_scan.analyse_series(con, series, [site], scope, catalog, site)
        except (KeyError, ValueError) as exc:
            raise AlertConfigError(
                f"alert {rule.name!r}: {rule.query} gives no monthly series of {rule.rate} ({exc})"
            ) from None
        rows = signals.series_rows(series, df)
        at = rows[rows["month"].dt.date == month]
        value = None
        if len(at) and at["n"].notna().iloc[0] and at["n"].iloc[0] > 0:
            value = float(at["events"].iloc[0] / at["n"].iloc[0])
        if rule.condition == "signal":
            hits = [s for s in analysis.signals if s.end_month >= month]
            holds = bool(hits)
            sentence = "; ".join(s.sentence for s in hits) if hits else "no signal"
        elif value is None:
            holds, sentence = None, f"{month:%b %Y}: hidden or no data"
        else:
            holds = value < rule.threshold if rule.condition == "below" else value > rule.threshold
            sentence = (
                f"{month:%b %Y}: {value:.1%} ({rule.condition} {rule.threshold:.1%})"
                if holds
                else f"{month:%b %Y}: {value:.1%}"
            )
        out.append(Reading(rule, site, holds, month, value, sentence, rows, analysis))
    return out
