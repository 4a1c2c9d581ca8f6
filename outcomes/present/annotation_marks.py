"""Program events (the annotations extract) drawn on a chart with a calendar time axis: a dashed line for a day, a
shaded band for a span, the label on hover (a marker along the top) and one line each under the chart."""

from __future__ import annotations

import datetime as dt
import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from outcomes.present import under_chart

EVENT_COLOUR = "#6A3D9A"
NAME = "program event"


def calendar_span(fig: go.Figure) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and last date on the figure's x axes, or None when no trace has dates along x."""
    lows, highs = [], []
    for trace in fig.data:
        xs = getattr(trace, "x", None)
        if xs is None or len(xs) == 0:
            continue
        values = np.asarray(xs, dtype=object)
        if not all(isinstance(v, (dt.date, pd.Timestamp, np.datetime64)) or v is None for v in values):
            continue
        days = pd.to_datetime(pd.Series(values), errors="coerce").dropna()
        if not days.empty:
            lows.append(days.min())
            highs.append(days.max())
    if not lows:
        return None
    return min(lows), max(highs)


def _panels(fig: go.Figure) -> list[tuple[str, str]]:
    """The (x axis, y axis) of each panel that holds a trace, in the order of their axes (row by row in a
    grid), overlaid axes left out; ("x", "y") for a figure of one."""

    def number(ref: str) -> int:
        return int(ref[1:] or 1)

    used = sorted({(t.xaxis or "x", t.yaxis or "y") for t in fig.data}, key=lambda p: (number(p[1]), number(p[0])))
    layout = fig._layout  # read, not copied: to_plotly_json copies the template too
    own = [(x, y) for x, y in used if not (layout.get(f"yaxis{y[1:]}") or {}).get("overlaying")]
    return own or [("x", "y")]


def when(start: dt.date, end: dt.date | None) -> str:
    """ "3 Mar 2025", or "1 Mar – 30 Apr 2025" for a span."""
    if end is None or end == start:
        return f"{start:%-d %b %Y}"
    first = f"{start:%-d %b}" if start.year == end.year else f"{start:%-d %b %Y}"
    return f"{first} – {end:%-d %b %Y}"


def line(row) -> str:
    """One event as the line under a chart: "Event: 1 Mar – 30 Apr 2025, Northside: Staffing gap (staffing)"."""
    site = row["site"] or "all sites"
    category = f" ({row['category']})" if row["category"] else ""
    return f"Event: {when(row['start_date'], row['end_date'])}, {site}: {row['label']}{category}"


def rows_of(events: pd.DataFrame) -> list[dict]:
    """The annotations query's rows as dicts with dates as dates and missing text as ''."""
    out = []
    for r in events.to_dict("records"):
        start = pd.Timestamp(r["start_date"]).date()
        end = pd.Timestamp(r["end_date"]).date() if pd.notna(r.get("end_date")) else None
        out.append(
            {
                "start_date": start,
                "end_date": end,
                "site": r.get("site") if isinstance(r.get("site"), str) else "",
                "label": str(r["label"]),
                "category": r.get("category") if isinstance(r.get("category"), str) else "",
            }
        )
    return out


def draw(fig: go.Figure | None, events: pd.DataFrame) -> go.Figure | None:
    """Draw the events that fall within the figure's dates on it (on every panel of a grid) and record their
    lines; a figure without a calendar axis, or no event in its range, is returned as it was."""
    if fig is None or events is None or events.empty:
        return fig
    span = calendar_span(fig)
    if span is None:
        return fig
    pad = pd.Timedelta(days=31)  # a monthly point stands for the month after its date
    lo, hi = span[0] - pad, span[1] + pad
    shown = [
        r
        for r in rows_of(events)
        if pd.Timestamp(r["start_date"]) <= hi and pd.Timestamp(r["end_date"] or r["start_date"]) >= lo
    ]
    if not shown:
        return fig
    panels = _panels(fig)
    shapes = []
    for r in shown:
        start = pd.Timestamp(r["start_date"])
        if r["end_date"] is None or r["end_date"] == r["start_date"]:
            mark = dict(type="line", x0=start, x1=start, line=dict(color=EVENT_COLOUR, width=1.5, dash="dash"))
            mark["opacity"] = 0.8
        else:
            end = pd.Timestamp(r["end_date"]) + pd.Timedelta(days=1)
            mark = dict(type="rect", x0=start, x1=end, fillcolor=EVENT_COLOUR, opacity=0.10, line=dict(width=0))
            mark["layer"] = "below"
        # on every panel with data, as add_vline and add_vrect draw them, added in one update below
        shapes += [mark | dict(xref=x, yref=f"{y} domain", y0=0, y1=1) for x, y in panels]
    # the labels on hover: markers along the top, on an invisible axis of their own so the data's axes keep
    # their ranges
    taken = [int(k[5:] or 1) for k in fig._layout if k.startswith("yaxis")]
    axis = max(taken, default=1) + 1
    more = {"shapes": [*fig.layout.shapes, *shapes]} if shapes else {}
    fig.update_layout({f"yaxis{axis}": dict(overlaying="y", range=[0, 1], visible=False, fixedrange=True)}, **more)
    fig.add_traces(
        [
            dict(
                type="scatter",
                x=[pd.Timestamp(r["start_date"]) for r in shown],
                y=[0.97] * len(shown),
                xaxis="x",
                yaxis=f"y{axis}",
                mode="markers",
                name=NAME,
                legendgroup=NAME,
                showlegend=True,
                cliponaxis=False,
                marker=dict(symbol="triangle-down", size=11, color=EVENT_COLOUR),
                hovertext=[html.escape(line(r)[len("Event: ") :]) for r in shown],
                hovertemplate="%{hovertext}<extra></extra>",
            )
        ]
    )
    under_chart.add(fig, "events", [line(r) for r in shown])
    return fig
