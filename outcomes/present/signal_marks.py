"""Control-chart signals drawn on a p-chart: the rules of outcomes.measures.signals applied to the points the
chart shows, a run on one side of the centre line as a broad band behind its points, the span of too few
crossings shaded, each point outside the limits ringed, and a sentence per signal for under the chart."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from outcomes.measures import signals
from outcomes.present import under_chart
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


def marked(
    fig: go.Figure,
    data: pd.DataFrame,
    x: str,
    events: str,
    limits: pd.DataFrame,
    row: int | None = None,
    col: int | None = None,
    group: str = "",
) -> go.Figure:
    """Apply the rules to the points a p-chart shows (`data` holds x, `events` and `n`, missing where hidden;
    `limits` is its stats.p_chart frame on the same rows), draw the signals and record their sentences."""
    unit = unit_of(data[x])
    if unit is None:
        return fig
    n = pd.to_numeric(data["n"], errors="coerce").astype("float64").reset_index(drop=True)
    counts = pd.to_numeric(data[events], errors="coerce").astype("float64").reset_index(drop=True).where(n.notna())
    xs = pd.to_datetime(data[x]).reset_index(drop=True)
    found = signals.analyse(xs, counts, n, site=group, unit=unit).signals
    if found:
        p = pd.Series(limits["p"].to_numpy(dtype=float), index=[d.date() for d in xs])
        draw(fig, found, p, row, col)
        under_chart.add(fig, "signals", [sentence(s, group) for s in found])
    return fig


def draw(fig: go.Figure, found: list, p: pd.Series, row: int | None = None, col: int | None = None) -> go.Figure:
    """Draw signals on a p-chart whose shown rates `p` are indexed by date; on subplot (row, col) if given."""
    where = dict(row=row, col=col) if row else {}
    named = {t.name for t in fig.data}
    traces = []
    for s in found:
        if s.rule == "few_crossings":
            fig.add_vrect(
                x0=pd.Timestamp(s.start_month) - pd.Timedelta(days=12),
                x1=pd.Timestamp(s.end_month) + pd.Timedelta(days=12),
                fillcolor=alpha(SIGNAL_COLOUR, 0.06),
                line_width=0,
                layer="below",
                **where,
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
            )
        )
        named.add(name)
    if traces:
        fig.add_traces(traces, **({"rows": [row] * len(traces), "cols": [col] * len(traces)} if row else {}))
        # behind the rate line: the marks first, then everything already drawn
        fig.data = fig.data[-len(traces) :] + fig.data[: -len(traces)]
    return fig
