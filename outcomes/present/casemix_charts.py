"""Figures of the site comparison (queries/site_comparison.sql): a funnel plot, and raw against adjusted rates.

Both take the suppressed result table; a site whose values are hidden is named on the figure, never dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from outcomes.measures.funnel import funnel_limits
from outcomes.measures.stats import wilson
from outcomes.present.theme import PALETTE, figure_of, finished_layout, merged, num, vline

FLAG_STYLE = {  # colour and marker: the flag reads without colour too
    "within": (PALETTE[0], "circle"),
    "below": (PALETTE[5], "triangle-down"),
    "above": (PALETTE[2], "triangle-up"),
}
LIMIT_COLOUR = "#777777"
HIDDEN_COLOUR = "#767676"
GROUP_NAMES = {
    "within": "Within limits",
    "below": "Below 99.8% limits",
    "above": "Above 99.8% limits",
    "raw": "Site (raw rate)",
}
HIDDEN_NOTE = "Hidden: a site whose counts are 1–10, or would give such a count away, is not plotted."
RATE_NAMES = {"adjusted_rate": "Adjusted rate", "raw_rate": "Raw rate"}


def _overall(df: pd.DataFrame) -> float | None:
    values = num(df["overall_rate"]).dropna()
    return float(values.iloc[0]) if len(values) else None


def funnel_plot(
    df: pd.DataFrame, rate: str = "adjusted_rate", title: str | None = None, height: int = 440
) -> go.Figure | None:
    """Each site's `rate` (adjusted_rate or raw_rate) against its eligible count, with 95% and 99.8% funnel
    limits around the all-site rate. None when the all-site rate is hidden (nothing to draw limits around)."""
    overall = _overall(df)
    if df.empty or overall is None:
        return None
    n, y = num(df["eligible"]), num(df[rate])
    top = max(float(n.max()) if n.notna().any() else 0.0, 20.0) * 1.08
    grid = np.unique(np.round(np.geomspace(5, top, 160)))
    traces = []
    for coverage, dash, name in ((0.998, "solid", "99.8% limits"), (0.95, "dash", "95% limits")):
        low, high = funnel_limits(overall, grid, coverage)
        for side, values in (("low", low), ("high", high)):
            traces.append(
                dict(
                    type="scatter",
                    x=grid,
                    y=values,
                    mode="lines",
                    name=name,
                    legendgroup=name,
                    showlegend=side == "low",
                    line=dict(color=LIMIT_COLOUR, dash=dash, width=1.3),
                    hoverinfo="skip",
                )
            )
    traces.append(
        dict(
            type="scatter",
            x=[grid[0], grid[-1]],
            y=[overall, overall],
            mode="lines",
            name=f"All sites {overall:.0%}",
            line=dict(color="#333333", width=1.5),
            hoverinfo="skip",
        )
    )
    shown = y.notna() & n.notna()
    if rate == "adjusted_rate":
        groups = [(flag, shown & (df["flag"] == flag)) for flag in FLAG_STYLE]
    else:
        groups = [("raw", shown)]
    for flag, pick in groups:
        if not pick.any():
            continue
        colour, symbol = FLAG_STYLE.get(flag, (PALETTE[7], "diamond"))
        part = df[pick]
        custom = np.column_stack([num(part["observed"]), num(part["expected"]), num(part["oe_ratio"])])
        traces.append(
            dict(
                type="scatter",
                x=n[pick],
                y=y[pick],
                mode="markers",
                name=GROUP_NAMES[flag],
                text=part["site"],
                marker=dict(color=colour, symbol=symbol, size=11, line=dict(width=1, color="white")),
                customdata=custom,
                hovertemplate="<b>%{text}</b><br>" + RATE_NAMES.get(rate, rate) + " %{y:.1%}"
                "<br>eligible %{x:,.0f}, observed %{customdata[0]:,.0f}"
                "<br>expected %{customdata[1]:,.1f} (O/E %{customdata[2]:.2f})<extra></extra>",
            )
        )
    hidden = df.loc[~shown, "site"].tolist()
    if hidden:
        # a labelled placeholder in the legend and a note under the plot: the site is there, its values are not
        traces.append(
            dict(
                type="scatter",
                x=[None],
                y=[None],
                mode="markers",
                name="Hidden: " + ", ".join(hidden),
                marker=dict(symbol="x-thin", size=10, line=dict(width=1.5, color=HIDDEN_COLOUR)),
            )
        )
    values = pd.concat([y[shown], pd.Series([overall])])
    span = max(0.12, float(values.max() - values.min()) * 0.8)
    y_range = [max(0.0, float(values.min()) - span / 2), min(1.0, float(values.max()) + span / 2)]
    labels = _point_labels(df.loc[shown, "site"].tolist(), n[shown].tolist(), y[shown].tolist(), top, y_range)
    below, note = _legend_below(height, note=HIDDEN_NOTE if hidden else None)
    layout = merged(
        finished_layout(title, height, percent=True, y_title=RATE_NAMES.get(rate, rate)),
        dict(yaxis=dict(range=y_range), xaxis=dict(title=dict(text="Eligible episodes"), range=[0, top])),
        below,
        dict(annotations=labels + note),
    )
    return figure_of(traces, layout)


def _point_labels(names: list, xs: list, ys: list, x_top: float, y_range: list) -> list[dict]:
    """Site names beside their points, as annotations. Points that crowd one another get their labels fanned out on leader
    lines, on the side with room (left of points in the right third of the plot)."""
    order = sorted(range(len(names)), key=lambda i: (xs[i], -ys[i]))
    clusters: list[list[int]] = []
    for i in order:
        near = next(
            (
                c
                for c in clusters
                if any(
                    abs(xs[i] - xs[j]) < 0.06 * x_top and abs(ys[i] - ys[j]) < 0.06 * (y_range[1] - y_range[0])
                    for j in c
                )
            ),
            None,
        )
        if near is None:
            clusters.append([i])
        else:
            near.append(i)
    labels = []
    for cluster in clusters:
        cluster.sort(key=lambda i: -ys[i])
        for k, i in enumerate(cluster):
            left = xs[i] > 0.66 * x_top
            if len(cluster) == 1:
                labels.append(
                    dict(
                        x=xs[i],
                        y=ys[i],
                        text=names[i],
                        showarrow=False,
                        yshift=14,
                        xanchor="right" if left else "center",
                        font=dict(size=12),
                    )
                )
                continue
            labels.append(
                dict(
                    x=xs[i],
                    y=ys[i],
                    text=names[i],
                    showarrow=True,
                    arrowhead=0,
                    arrowwidth=0.8,
                    arrowcolor="#767676",
                    ax=-60 if left else 60,
                    ay=(k - (len(cluster) - 1) / 2) * 18,
                    xanchor="right" if left else "left",
                    font=dict(size=12),
                )
            )
    return labels


def _legend_below(height: int | None, note: str | None = None) -> tuple[dict, list[dict]]:
    """The layout that puts the legend under the x-axis title, so it never runs into the chart's title, and
    the annotation of a note under the legend (none without a note)."""
    bottom = 125 if note else 95
    plot = max(float(height or 440) - 50 - bottom, 100.0)  # the plotting area's height in pixels
    layout = dict(legend=dict(orientation="h", yanchor="top", y=-62 / plot, x=0, title={}), margin=dict(t=50, b=bottom))
    if not note:
        return layout, []
    return layout, [
        dict(
            text=note,
            xref="paper",
            yref="paper",
            x=0,
            y=-92 / plot,
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font=dict(color="#555555", size=12),
        )
    ]


def rate_comparison(
    df: pd.DataFrame, adjusted: bool = True, title: str | None = None, height: int | None = None
) -> go.Figure | None:
    """Per site, the raw rate (Wilson 95% interval) beside the adjusted rate (its O/E interval times the all-site
    rate), with the all-site rate as a line. Hidden values read "hidden" at the site. `adjusted=False` (a model
    that did not converge): raw rates only."""
    if df.empty:
        return None
    overall = _overall(df)
    sites = df["site"].tolist()[::-1]  # first site at the top
    rows = df.iloc[::-1].reset_index(drop=True)
    raw, adj = num(rows["raw_rate"]), num(rows["adjusted_rate"])
    obs, elig = num(rows["observed"]), num(rows["eligible"])
    ok = obs.notna() & elig.notna() & raw.notna()
    raw_low, raw_high = wilson(obs.where(ok, 0), elig.where(ok, 1))
    raw_low, raw_high = pd.Series(raw_low).where(ok), pd.Series(raw_high).where(ok)
    adj_low = num(rows["oe_low"]) * (overall if overall is not None else np.nan)
    adj_high = num(rows["oe_high"]) * (overall if overall is not None else np.nan)
    traces = []
    series = [("Raw rate (95% CI)", raw, raw_low, raw_high, PALETTE[7], "diamond", 0.17 if adjusted else 0.0)]
    if adjusted:
        series.append(("Adjusted rate (95% CI)", adj, adj_low, adj_high, PALETTE[0], "circle", -0.17))
    for name, values, low, high, colour, symbol, offset in series:
        pos = np.arange(len(sites)) + offset
        traces.append(
            dict(
                type="scatter",
                x=values,
                y=pos,
                mode="markers",
                name=name,
                marker=dict(color=colour, symbol=symbol, size=10),
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=(high - values).to_numpy(dtype=float),
                    arrayminus=(values - low).to_numpy(dtype=float),
                    color=colour,
                    thickness=1.5,
                    width=4,
                ),
                customdata=np.column_stack([low, high, elig]),
                text=sites,
                hovertemplate="<b>%{text}</b><br>" + name.split(" (")[0] + " %{x:.1%} "
                "(%{customdata[0]:.1%}–%{customdata[1]:.1%})"
                "<br>eligible %{customdata[2]:,.0f}<extra></extra>",
            )
        )
    gaps = [(i, s) for i, s in enumerate(sites) if pd.isna(raw.iloc[i]) or (adjusted and pd.isna(adj.iloc[i]))]
    notes = [
        dict(
            x=0,
            xref="paper",
            xanchor="left",
            y=i,
            text="hidden" if pd.isna(raw.iloc[i]) else "adjusted rate hidden",
            showarrow=False,
            font=dict(color="#555555", size=12),
        )
        for i, _site in gaps
    ]
    shapes = []
    if overall is not None:
        line, label = vline(
            overall,
            dict(color="#333333", width=1.2, dash="dot"),
            f"All sites {overall:.0%}",
            dict(size=12, color="#333333"),
        )
        shapes, notes = [line], notes + label
    height = height or 170 + 46 * len(sites)
    layout = merged(
        finished_layout(title, height, percent=False),
        _legend_below(height)[0],
        dict(
            showlegend=True,  # with raw rates only, the legend still says what the points are
            xaxis=dict(tickformat=".0%", rangemode="tozero", title=dict(text="Rate"), showgrid=True, gridcolor="#eee"),
            yaxis=dict(tickvals=np.arange(len(sites)), ticktext=sites, range=[-0.6, len(sites) - 0.4], showgrid=False),
            shapes=shapes,
            annotations=notes,
        ),
    )
    return figure_of(traces, layout)
