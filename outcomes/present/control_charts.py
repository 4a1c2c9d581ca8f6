"""p-charts: rates over time with a centre line and 3-sigma limits that vary with n, one chart or one per group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from outcomes.measures.stats import UNSTABLE_BELOW
from outcomes.present import hidden as hid
from outcomes.present import signal_marks, under_chart
from outcomes.present.theme import (
    PALETTE,
    benchmark_marks,
    figure_of,
    grid_layout,
    marker_symbols,
    rate_range,
    x_hover,
)

LIMITS_NOTE = (
    "Dotted lines (3-sigma limits): how far each month would wander by chance alone, given its number of "
    "clients; a point outside them is more than chance."
)


def p_chart(
    df: pd.DataFrame,
    x: str,
    limits: pd.DataFrame,
    title: str | None = None,
    benchmark: tuple | None = None,
    threshold: int = UNSTABLE_BELOW,
    marks: signal_marks.Marks = signal_marks.NONE,
) -> go.Figure:
    """A p-chart: observed rates, centre line, limits that vary with n, points outside marked; `marks`: the
    control-chart signals (signal_marks.marks), behind the rest.

    `df` holds the x column, `n` and, when known, Wilson `ci_low`/`ci_high` (shown on hover); `limits` is
    stats.p_chart on the same rows. A row with a missing n (hidden) is a gap. Points with n under
    `threshold` are hollow: too few for a stable rate.
    """
    traces = _p_chart_traces(df, x, limits, threshold)
    shapes, labels = benchmark_marks(benchmark)
    y_axis = dict(tickformat=".0%", rangemode="tozero", range=rate_range(traces, benchmark))
    layout = dict(
        yaxis=y_axis,
        hovermode="closest",
        shapes=shapes + marks.shapes,
        annotations=labels,
        title=dict(text=title) if title else {},
    )
    return figure_of(marks.traces + traces, layout | under_chart.recorded("signals", marks.lines))


def _p_chart_traces(df: pd.DataFrame, x: str, limits: pd.DataFrame, threshold: int, legend: bool = True) -> list:
    """The traces of one p-chart, as dicts: limits, centre line, rates, hidden placeholders, points outside."""
    traces = []
    xs = df[x].reset_index(drop=True)
    limits = limits.reset_index(drop=True)
    n = pd.to_numeric(df["n"], errors="coerce").astype("float64").reset_index(drop=True)
    for side, show in (("ucl", legend), ("lcl", False)):
        # a dash at each point as well as the stepped line, so a month between two hidden ones has limits too
        traces.append(
            dict(
                x=xs,
                y=limits[side],
                name="3-sigma limits",
                mode="lines+markers",
                legendgroup="limits",
                showlegend=show,
                hoverinfo="skip",
                connectgaps=False,
                marker=dict(symbol="line-ew", size=14, line=dict(width=1.5, color="#767676"), color="#767676"),
                line=dict(color="#767676", dash="dot", shape="hvh", width=1),
            )
        )
    traces.append(
        dict(
            x=xs,
            y=limits["center"].ffill().bfill(),
            name="centre line",
            mode="lines",
            legendgroup="centre",
            showlegend=legend,
            hoverinfo="skip",
            line=dict(color="#555", width=1.5),
        )
    )
    if {"ci_low", "ci_high"} <= set(df.columns):
        low, high = df["ci_low"].reset_index(drop=True), df["ci_high"].reset_index(drop=True)
    else:
        from outcomes.measures.stats import wilson

        low, high = wilson((limits["p"] * n).round().fillna(0), n.fillna(0))
    custom = np.column_stack(
        [
            pd.to_numeric(pd.Series(low), errors="coerce").to_numpy(dtype=float),
            pd.to_numeric(pd.Series(high), errors="coerce").to_numpy(dtype=float),
            n.to_numpy(dtype=float),
        ]
    )
    traces.append(
        dict(
            x=xs,
            y=limits["p"],
            name="rate",
            mode="lines+markers",
            legendgroup="rate",
            showlegend=legend,
            connectgaps=False,
            line=dict(color=PALETTE[0], width=2),
            marker=dict(
                size=8, color=PALETTE[0], symbol=marker_symbols(n, threshold), line=dict(width=2, color=PALETTE[0])
            ),
            customdata=custom,
            hovertemplate=x_hover(xs) + ": %{y:.1%}<br>95% CI %{customdata[0]:.1%}–%{customdata[1]:.1%}"
            "<br>n = %{customdata[2]:,.0f}<extra></extra>",
        )
    )
    gone = limits["p"].isna().to_numpy()
    if gone.any():
        # at the centre line, not on zero: a hidden month must not read as a rate of 0%
        centre = limits["center"].ffill().bfill().to_numpy(dtype=float)
        at = np.where(centre > 0, centre, hid.fallback_height(limits["p"]))
        why = df["_why"].reset_index(drop=True) if "_why" in df else pd.Series([""] * len(xs))
        traces.append(
            hid.marker(
                xs[gone],
                at[gone],
                [hid.words(w) for w in why[gone]],
                showlegend=legend,
                x_format=x_hover(xs),
            )
        )
    out = limits["outside"].fillna(False).astype(bool).to_numpy()
    if out.any():
        traces.append(
            dict(
                x=xs[out],
                y=limits["p"][out],
                name="outside limits",
                mode="markers",
                legendgroup="outside",
                showlegend=legend,
                hoverinfo="skip",
                marker=dict(color=PALETTE[5], size=13, symbol="diamond-open", line=dict(width=2)),
            )
        )
    return [{"type": "scatter"} | t for t in traces]


def _p_chart_frame(df: pd.DataFrame, x: str, events: str, n: str, rate: str | None, reasons=None):
    """Every row in x order with `n`, Wilson bounds and p-chart limits where the counts (and the query's own
    rate, when it has one) are shown; hidden rows keep their x with missing values, so they draw as gaps.

    A rate can be hidden while both its counts are shown (their difference is small); it is not recomputed.
    Returns (frame, limits), or None when no row is shown.
    """
    from outcomes.measures.stats import p_chart as limits_of
    from outcomes.measures.stats import wilson

    why = hid.reason_of(reasons, df.index, [c for c in (rate, events, n) if c])
    data = df.assign(_why=why).sort_values(x).reset_index(drop=True)
    count = pd.to_numeric(data[n], errors="coerce").astype("float64")
    ok = data[events].notna() & count.gt(0)
    if rate:
        ok &= data[rate].notna()
    if not ok.any():
        return None
    shown = data[ok]
    limits = limits_of(shown[events].astype(float), count[ok].astype(float)).reindex(data.index)
    limits["outside"] = limits["outside"].astype("boolean").fillna(False).astype(bool)
    low, high = wilson(shown[events].astype(float), count[ok].astype(float))
    data = data.assign(
        n=count.where(ok),
        ci_low=pd.Series(np.asarray(low), index=shown.index).reindex(data.index),
        ci_high=pd.Series(np.asarray(high), index=shown.index).reindex(data.index),
    )
    return data, limits


def rate_p_chart(
    df: pd.DataFrame,
    x: str,
    events: str,
    n: str,
    title: str | None = None,
    benchmark: tuple | None = None,
    rate: str | None = None,
    threshold: int = UNSTABLE_BELOW,
    reasons: pd.DataFrame | None = None,
) -> go.Figure | None:
    """p-chart over the rows whose counts are shown; hidden rows are gaps in the line with a placeholder on the
    centre line, and are left out of the limits."""
    framed = _p_chart_frame(df, x, events, n, rate, reasons)
    if framed is None:
        return None
    data, limits = framed
    marks = signal_marks.marks(data, x, events, limits)
    return p_chart(data, x, limits, title, benchmark, threshold, marks)


def p_chart_grid(
    df: pd.DataFrame,
    group: str,
    x: str,
    events: str,
    n: str,
    rate: str | None = None,
    threshold: int = UNSTABLE_BELOW,
    columns: int = 3,
    row_height: int = 250,
    reasons: pd.DataFrame | None = None,
) -> go.Figure | None:
    """Small multiples: one p-chart per `group` value (e.g. site), each with its own centre line and limits,
    on one shared y axis and one time range; a group whose values are all hidden says so."""
    names = sorted(dict.fromkeys(df[group]), key=str)  # the same order whatever the filters leave
    if not names:
        return None
    cols = min(columns, len(names))
    rows = -(-len(names) // cols)
    titles = tuple(str(v) for v in names)
    layout = grid_layout(rows, cols, subplot_titles=titles, horizontal_spacing=0.05, vertical_spacing=0.14)
    span = pd.to_datetime(df[x])
    traces, shapes, lines, drawn = [], [], [], False
    for i, name in enumerate(names):
        axes = (f"x{i + 1 if i else ''}", f"y{i + 1 if i else ''}")
        framed = _p_chart_frame(df[df[group] == name], x, events, n, rate, reasons)
        if framed is None:
            xd, yd = layout[f"xaxis{i + 1 if i else ''}"]["domain"], layout[f"yaxis{i + 1 if i else ''}"]["domain"]
            layout["annotations"].append(hid.panel_note(xd, yd))
            # an empty trace so the panel still draws its axes
            traces.append(
                dict(
                    type="scatter",
                    x=[span.min(), span.max()],
                    y=[None, None],
                    mode="markers",
                    showlegend=False,
                    hoverinfo="skip",
                    xaxis=axes[0],
                    yaxis=axes[1],
                )
            )
            continue
        data, limits = framed
        traces += [
            t | dict(xaxis=axes[0], yaxis=axes[1]) for t in _p_chart_traces(data, x, limits, threshold, not drawn)
        ]
        marks = signal_marks.marks(data, x, events, limits, str(name), axes, {t.get("name") for t in traces})
        traces = marks.traces + traces  # behind the rate line: the marks first, then everything already drawn
        shapes += marks.shapes
        lines += marks.lines
        drawn = True
    if not drawn:
        return None
    pad = pd.Timedelta(days=20)
    for key, axis in layout.items():
        if key.startswith("xaxis"):
            axis.update(
                range=[span.min() - pad, span.max() + pad],
                showline=True,
                linecolor="#767676",
                tickformat="%b %y",
                nticks=5,
            )
        elif key.startswith("yaxis"):
            axis.update(
                tickformat=".0%", range=[0, 1], showline=True, linecolor="#767676", gridcolor="#eee", dtick=0.25
            )
    layout |= dict(
        height=row_height * rows + 80,
        hovermode="closest",
        legend=dict(orientation="h", yanchor="bottom", y=1.1, x=0, title={}),
        shapes=shapes,
    )
    return figure_of(traces, layout | under_chart.recorded("signals", lines))
