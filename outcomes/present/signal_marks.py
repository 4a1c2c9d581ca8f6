"""Control-chart signals drawn on a p-chart: the rules of outcomes.measures.signals applied to the points the
chart shows, a run on one side of the centre line as a broad band behind its points, the span of too few
crossings shaded, each point outside the limits ringed, and a sentence per signal for under the chart."""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from outcomes.measures import signals
from outcomes.present.theme import alpha

SIGNAL_COLOUR = "#D55E00"
RUN_NAME, POINT_NAME = "signal: long run", "signal: outside limits"


def unit_of(xs) -> str | None:
    """The grain of a time axis: "month" or "quarter" for first-of-month dates, None for anything else (a
    chart over weeks since admission or over categories gets no signals)."""
    values = pd.Series(list(xs)).dropna()
    if values.empty or pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    try:
        days = pd.to_datetime(values, format="ISO8601")  # dates, or text such as 2025-03-01; never guessed
    except (TypeError, ValueError):
        return None
    if (days.dt.day != 1).any():
        return None
    index = sorted(set(days.dt.year * 12 + days.dt.month - 1))
    steps = [b - a for a, b in zip(index, index[1:])]
    if all(i % 3 == 0 for i in index) and steps and min(steps) >= 3:
        return "quarter"
    return "month"


def sentence(signal: signals.Signal, group: str = "") -> str:
    """ "Signal: 8 months in a row below the centre line since Mar 2025." (with the group when there are several)."""
    return f"Signal{f' at {group}' if group else ''}: {signal.sentence}."


class Marks(NamedTuple):
    """What a p-chart's signals add to it: traces to draw behind everything drawn before them, shapes, and
    the sentences for under the chart."""

    traces: list[dict]
    shapes: list[dict]
    lines: list[str]


NONE = Marks([], [], [])


def marks(
    data: pd.DataFrame,
    x: str,
    events: str,
    limits: pd.DataFrame,
    group: str = "",
    axes: tuple[str, str] | None = None,
    named: set | frozenset = frozenset(),
) -> Marks:
    """Apply the rules to the points a p-chart shows (`data` holds x, `events` and `n`, missing where hidden;
    `limits` is its stats.p_chart frame on the same rows) and draw what they find on the panel of `axes` (x
    and y axis of a panel of small multiples; None: a chart of one); `named`: the names already in the legend."""
    unit = unit_of(data[x])
    if unit is None:
        return NONE
    n = pd.to_numeric(data["n"], errors="coerce").astype("float64").reset_index(drop=True)
    counts = pd.to_numeric(data[events], errors="coerce").astype("float64").reset_index(drop=True).where(n.notna())
    xs = pd.to_datetime(data[x]).reset_index(drop=True)
    found = signals.analyse(xs, counts, n, site=group, unit=unit).signals
    if not found:
        return NONE
    p = pd.Series(limits["p"].to_numpy(dtype=float), index=[d.date() for d in xs])
    traces, shapes = draw(found, p, axes, named)
    return Marks(traces, shapes, [sentence(s, group) for s in found])


def draw(
    found: list, p: pd.Series, axes: tuple[str, str] | None = None, named: set | frozenset = frozenset()
) -> tuple[list[dict], list[dict]]:
    """The traces and shapes of signals on a p-chart whose shown rates `p` are indexed by date, on the panel
    of `axes` (see marks)."""
    x_axis, y_axis = axes or ("x", "y")
    named = set(named)
    traces, shapes = [], []
    for s in found:
        if s.rule == "few_crossings":
            shapes.append(
                dict(
                    type="rect",
                    x0=pd.Timestamp(s.start_month) - pd.Timedelta(days=12),
                    x1=pd.Timestamp(s.end_month) + pd.Timedelta(days=12),
                    xref=x_axis,
                    y0=0,
                    y1=1,
                    yref=f"{y_axis} domain",
                    fillcolor=alpha(SIGNAL_COLOUR, 0.06),
                    line=dict(width=0),
                    layer="below",
                )
            )
            continue
        at = [m for m in s.months if m in p.index and pd.notna(p[m])]
        if not at:
            continue
        name = RUN_NAME if s.rule == "long_run" else POINT_NAME
        look = (
            dict(
                mode="lines+markers",
                line=dict(color=alpha(SIGNAL_COLOUR, 0.35), width=12),
                marker=dict(size=16, color=alpha(SIGNAL_COLOUR, 0.35)),
            )
            if s.rule == "long_run"
            else dict(
                mode="markers", marker=dict(size=20, color="rgba(0,0,0,0)", line=dict(width=2.5, color=SIGNAL_COLOUR))
            )
        )
        traces.append(
            dict(
                type="scatter",
                x=[pd.Timestamp(m) for m in at],
                y=[float(p[m]) for m in at],
                name=name,
                legendgroup=name,
                showlegend=name not in named,
                hoverinfo="skip",
                **look,
                **(dict(xaxis=x_axis, yaxis=y_axis) if axes else {}),
            )
        )
        named.add(name)
    return traces, shapes
