"""The time grain of rate-over-time queries: `grain: auto` picks the finest grain whose view can be read.

A query takes `grain` as a choice parameter; the calendar grains among its choices (week, month, quarter, half,
year; `period_start` in queries/_build/00_macros.sql turns a date into its period) are tried finest first, and
`auto` settles on the first at which at least TARGET of the view's rate cells are shown after suppression, or,
when none is, on the one showing the largest share (the coarser of two that show as much).
"""

from __future__ import annotations

from collections.abc import Callable

from outcomes.catalog.query import Query
from outcomes.privacy.coverage import shown_share

AUTO = "auto"
GRAINS = ("week", "month", "quarter", "half", "year")  # finest first
TARGET = 0.8
WORDS = {  # grain: (the grain as an adjective, the period, its plural)
    "week": ("Weekly", "week", "weeks"),
    "month": ("Monthly", "month", "months"),
    "quarter": ("Quarterly", "quarter", "quarters"),
    "half": ("Half-yearly", "half-year", "half-years"),
    "year": ("Yearly", "year", "years"),
}
# what a rate's denominator counts, for the note, by a word in its column name
NOUNS = (("discharge", "discharges"), ("referred", "referrals"), ("scheduled", "sessions"), ("episode", "episodes"))


def ladder(query: Query) -> list[str]:
    """The calendar grains a query takes, finest first; empty when it takes no `auto` grain."""
    p = query.params.get("grain")
    if p is None or AUTO not in p.choices:
        return []
    return [g for g in GRAINS if g in p.choices]


def noun(query: Query) -> str:
    """What the query's first rate is out of, in plain words ("discharges")."""
    rates = query.suppress.get("rates") or {}
    denominator = next(iter(rates.values()))[1] if rates else ""
    return next((word for stem, word in NOUNS if stem in denominator), "cases")


def note(query: Query, chosen: str) -> str:
    """What a chart says of a grain `auto` coarsened ("" when it kept the finest)."""
    grains = ladder(query)
    if not grains or chosen == grains[0]:
        return ""
    finest = WORDS[grains[0]]
    return f"{WORDS[chosen][0]}: too few {noun(query)} per {finest[1]} to show {finest[2]}"


def word(grain: str | None) -> str:
    """A grain as a period noun for titles ("half-year"); other values as they are."""
    return WORDS[grain][1] if grain in WORDS else str(grain or "")


def choose(query: Query, run_at: Callable[[str], tuple], values: dict) -> tuple[str, tuple]:
    """(grain, what run_at gave for it): run_at(grain) returns (suppressed data, mask, ...) and is called for
    each grain in turn, finest first, until one shows TARGET of the view's rate cells (`drawn_rates`)."""
    rates = drawn_rates(query, values)
    best = None
    for grain in ladder(query):
        out = run_at(grain)
        share = shown_share(out[0], out[1], query.suppress, query.panel.get("rows"), rates)
        if share >= TARGET:
            return grain, out
        if best is None or share >= best[0]:  # on a tie the coarser: fewer, surer values
            best = (share, grain, out)
    return best[1], best[2]


def drawn_rates(query: Query, values: dict) -> list[str]:
    """The declared rates the query's chart draws (its `{name}` placeholders filled from `values` and the panel's
    vars), or every declared rate when the chart names none."""
    declared = list(query.suppress.get("rates") or {})
    fill = (query.panel.get("vars") or {}) | {k: v for k, v in values.items() if v is not None}
    named = set()
    for value in query.chart.values():
        for text in (list(value) + list(value.values())) if isinstance(value, dict) else [value]:
            if isinstance(text, str):
                try:
                    named.add(text.format(**fill))
                except (KeyError, IndexError, ValueError):
                    pass
    return [c for c in declared if c in named] or declared
