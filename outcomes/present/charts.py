"""The chart vocabulary: what a query header's `chart:` may name, and the figure it draws.

`chart: {kind: p_chart, x: month, events: stepped_down, n: eligible_discharges, rate: stepdown_rate}` names a
builder (its `kind`) and that builder's arguments. Director pages, Explore, the page PDF and the digest all
draw a query through `figure`, so they draw the same thing. Arguments that name result columns are checked
against the result; text values may hold `{name}` placeholders, filled from the query's bound parameters and
the panel's `vars` (e.g. `y: readmission_rate_{window}`).
"""

from __future__ import annotations

import inspect
import string
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go

from outcomes.measures.references import BENCHMARKS
from outcomes.present import casemix_charts, control_charts, flow_charts, rate_charts
from outcomes.present.theme import LEVEL_COLOURS, LEVEL_TICKS

# Arguments naming one result column, and arguments mapping result columns to labels (or to other columns).
COLUMN_ARGS = {
    "x",
    "y",
    "n",
    "color",
    "group",
    "events",
    "rate",
    "low",
    "high",
    "z",
    "facet",
    "source",
    "target",
    "value",
}
COLUMN_MAPS = {"ys", "stages", "measures", "rates"}
# Arguments given by name in the header, and what each name stands for.
NAMED = {"benchmark": BENCHMARKS, "x_labels": {"levels": LEVEL_TICKS}, "colours": {"levels": LEVEL_COLOURS}}
# Filled in by the panel, never written in a header.
IMPLIED = {"threshold", "title", "reasons", "count_columns"}


@dataclass(frozen=True)
class Builder:
    kind: str
    draw: Callable[..., go.Figure | None]
    note: str = ""  # printed under every chart of this kind
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        sig = inspect.signature(self.draw)
        object.__setattr__(self, "params", {n: p for n, p in list(sig.parameters.items())[1:]})

    @property
    def required(self) -> set[str]:
        return {n for n, p in self.params.items() if p.default is inspect.Parameter.empty}


BUILDERS: dict[str, Builder] = {
    b.kind: b
    for b in (
        Builder("p_chart", control_charts.rate_p_chart, note=control_charts.LIMITS_NOTE),
        Builder("p_chart_grid", control_charts.p_chart_grid, note=control_charts.LIMITS_NOTE),
        Builder("rate_lines", rate_charts.rate_lines),
        Builder("rate_bars", rate_charts.rate_bars),
        Builder("median_bars", rate_charts.median_bars),
        Builder("rate_heatmap", rate_charts.rate_heatmap),
        Builder("facets", rate_charts.facet_rates),
        Builder("curves", flow_charts.curves, note=flow_charts.CURVE_NOTE),
        Builder("funnel", flow_charts.funnel),
        Builder("sankey", flow_charts.sankey),
        Builder("funnel_plot", casemix_charts.funnel_plot),
        Builder("rate_comparison", casemix_charts.rate_comparison),
    )
}
KINDS = (*BUILDERS, "table")


def placeholders(value) -> set[str]:
    """The `{name}` placeholders in a header value (a string, or the keys and values of a mapping)."""
    if isinstance(value, dict):
        return set().union(*(placeholders(k) | placeholders(v) for k, v in value.items())) if value else set()
    if isinstance(value, str):
        return {name for _, name, _, _ in string.Formatter().parse(value) if name}
    return set()


def fill(value, values: dict):
    """`value` with its placeholders filled from `values`."""
    if isinstance(value, dict):
        return {fill(k, values): fill(v, values) for k, v in value.items()}
    if isinstance(value, str) and placeholders(value):
        return value.format(**values)
    return value


def spec(chart: dict, values: dict | None = None, overrides: dict | None = None) -> dict:
    """The chart to draw: the header's `chart:` with the page's overrides, placeholders filled."""
    merged = {**chart, **(overrides or {})}
    return {k: fill(v, values or {}) for k, v in merged.items() if v is not None}


def benchmark(chart: dict):
    """The reference value a filled chart spec draws, or None."""
    return BENCHMARKS.get(chart.get("benchmark")) if chart.get("benchmark") else None


def figure(
    chart: dict,
    df: pd.DataFrame,
    threshold: int | None = None,
    title: str | None = None,
    reasons: pd.DataFrame | None = None,
    count_columns=(),
) -> go.Figure | None:
    """Draw a filled chart spec (see `spec`) from already-suppressed rows; None for a table or nothing to draw.
    `reasons` (why each hidden cell is hidden) and `count_columns` (the query's counts) let the chart label its
    placeholders for hidden values "1–10", "too few" or "hidden"."""
    kind = chart.get("kind")
    if kind in (None, "table") or df.empty:
        return None
    builder = BUILDERS[kind]
    args = {k: (NAMED[k][v] if k in NAMED else v) for k, v in chart.items() if k != "kind"}
    if threshold is not None and "threshold" in builder.params:
        args["threshold"] = threshold
    if title is not None and "title" in builder.params:
        args["title"] = title
    if reasons is not None and "reasons" in builder.params:
        args["reasons"] = reasons
    if count_columns and "count_columns" in builder.params:
        args["count_columns"] = tuple(count_columns)
    return builder.draw(df, **args)


def columns(chart: dict) -> list[str]:
    """The result columns a filled chart spec reads."""
    out = []
    for k, v in chart.items():
        if k in COLUMN_ARGS and isinstance(v, str):
            out.append(v)
        elif k in COLUMN_MAPS and isinstance(v, dict):
            out += [str(c) for c in v] + ([str(c) for c in v.values()] if k == "rates" else [])
    return list(dict.fromkeys(out))


def problems(chart: dict, known: set[str] = frozenset()) -> list[str]:
    """What is wrong with a header's `chart:` (before placeholders are filled): an unknown kind, an argument the
    builder does not take or a required one missing, a name that stands for nothing, a placeholder that is not
    in `known` (the query's parameters and the panel's vars)."""
    if not chart:
        return []
    kind = chart.get("kind")
    if kind == "table":
        return (
            [f"chart: a table takes no arguments ({', '.join(k for k in chart if k != 'kind')})"]
            if len(chart) > 1
            else []
        )
    if kind not in BUILDERS:
        return [f"chart: kind {kind!r} is not one of {', '.join(KINDS)}"]
    builder = BUILDERS[kind]
    given = set(chart) - {"kind"}
    found = [
        f"chart: {kind} takes no argument {k!r} (it takes {', '.join(sorted(set(builder.params) - IMPLIED))})"
        for k in sorted(given - set(builder.params) | (given & IMPLIED))
    ]
    found += [f"chart: {kind} needs {k!r}" for k in sorted(builder.required - given)]
    for k, v in chart.items():
        if k in NAMED and isinstance(v, str) and not placeholders(v) and v not in NAMED[k]:
            found.append(f"chart: {k} {v!r} is not one of {', '.join(NAMED[k])}")
        missing = placeholders(v) - set(known)
        if missing:
            found.append(
                f"chart: {k} uses {{{', '.join(sorted(missing))}}}, which is neither a parameter nor a panel var"
            )
    return found
