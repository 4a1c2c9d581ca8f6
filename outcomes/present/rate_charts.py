"""Rates and medians: lines over time, grouped bars, medians with quartiles, heat maps, small multiples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from outcomes.measures.stats import UNSTABLE_BELOW
from outcomes.present.theme import (
    PALETTE,
    add_benchmark,
    finish,
    fit_rate_axis,
    label,
    level_colour,
    marker_symbols,
    num,
    pretty,
    series_colour,
    themed,
    tick,
    x_hover,
)


def rate_lines(
    df: pd.DataFrame,
    x: str,
    y: str,
    n: str | None = None,
    color: str | None = None,
    threshold: int = UNSTABLE_BELOW,
    title: str | None = None,
    y_label: str | None = None,
    percent: bool = True,
    shape: str = "linear",
    benchmark=None,
    height: int = 340,
    colours: dict | None = None,
) -> go.Figure | None:
    """Lines over x, one per `color` group; a hidden value leaves a gap, an unstable one a hollow marker."""
    if df.empty or df[y].notna().sum() == 0:
        return None
    fig = go.Figure()
    groups = [(None, df)] if color is None else list(df.groupby(color, sort=False, dropna=False))
    value = "%{y:.1%}" if percent else "%{y:,.1f}"
    traces = []  # added in one go: one check of each trace instead of two
    for i, (name, g) in enumerate(groups):
        g = g.sort_values(x)
        colour = (colours or {}).get(name) or (series_colour(i) if color else PALETTE[0])
        nn = g[n] if n else pd.Series(np.nan, index=g.index)
        traces.append(
            dict(
                type="scatter",
                x=g[x],
                y=g[y],
                name=label(y) if name is None else pretty(name),
                mode="lines+markers",
                line=dict(color=colour, shape=shape, width=2),
                marker=dict(
                    size=8, color=colour, symbol=marker_symbols(nn, threshold), line=dict(width=2, color=colour)
                ),
                customdata=num(nn, errors="coerce").to_numpy(dtype=float),
                hovertemplate=(
                    f"{'' if name is None else pretty(name) + '<br>'}{x_hover(g[x])}: {value}"
                    + ("<br>n = %{customdata:,.0f}" if n else "")
                    + "<extra></extra>"
                ),
            )
        )
    # where a value is hidden, an x on the axis in the group's colour (one grey key in the legend)
    for i, (name, g) in enumerate(groups):
        hidden = g[g[y].isna()]
        if hidden.empty:
            continue
        colour = (colours or {}).get(name) or (series_colour(i) if color else PALETTE[0])
        label_of = "" if name is None else pretty(name) + ", "
        traces.append(
            dict(
                type="scatter",
                x=hidden[x],
                y=np.zeros(len(hidden)),
                name="hidden (1–10)",
                mode="markers",
                legendgroup="hidden",
                showlegend=False,
                cliponaxis=False,
                hovertemplate=f"{label_of}{x_hover(hidden[x])}: hidden (a count of 1–10)<extra></extra>",
                marker=dict(symbol="x-thin", size=9, line=dict(width=1.5, color=colour), color=colour, opacity=0.6),
            )
        )
    if df[y].isna().any():
        traces.append(
            dict(
                type="scatter",
                x=[None],
                y=[None],
                name="hidden (1–10)",
                mode="markers",
                legendgroup="hidden",
                marker=dict(symbol="x-thin", size=9, line=dict(width=1.5, color="#888"), color="#888"),
            )
        )
    fig.add_traces(traces)
    add_benchmark(fig, benchmark)
    finish(fig, title, height, percent, y_label)
    if percent:
        fit_rate_axis(fig, benchmark)
    return fig


def rate_bars(
    df: pd.DataFrame,
    x: str,
    ys: dict[str, str],
    n: str | None = None,
    threshold: int = UNSTABLE_BELOW,
    title: str | None = None,
    benchmark=None,
    height: int = 340,
    x_labels: dict | None = None,
) -> go.Figure | None:
    """Grouped bars of one or more rates by x; unstable bars hatched, hidden ones missing."""
    if df.empty or df[list(ys)].notna().sum().sum() == 0:
        return None
    fig = go.Figure()
    xs = [(x_labels or {}).get(v, pretty(v)) for v in df[x]]
    nn = num(df[n], errors="coerce") if n else pd.Series(np.nan, index=df.index)
    unstable = (nn < threshold).to_numpy()
    for i, (col, name) in enumerate(ys.items()):
        vals = num(df[col], errors="coerce")
        fig.add_bar(
            x=xs,
            y=vals,
            name=name,
            marker=dict(
                color=series_colour(i),
                pattern=dict(shape=["/" if u else "" for u in unstable], fillmode="overlay", solidity=0.4),
            ),
            text=[("" if pd.isna(v) else (f"({v:.0%})" if u else f"{v:.0%}")) for v, u in zip(vals, unstable)],
            textposition="outside",
            cliponaxis=False,
            customdata=nn.to_numpy(dtype=float),
            hovertemplate=f"%{{x}}<br>{name}: %{{y:.1%}}"
            + ("<br>n = %{customdata:,.0f}" if n else "")
            + "<extra></extra>",
        )
    fig.update_layout(barmode="group", bargap=0.3)
    add_benchmark(fig, benchmark)
    finish(fig, title, height, True)
    fit_rate_axis(fig, benchmark)
    return fig


def median_bars(
    df: pd.DataFrame,
    x: str,
    y: str,
    low: str,
    high: str,
    n: str,
    title: str | None = None,
    height: int = 320,
    x_labels: dict | None = None,
    unit: str = "days",
) -> go.Figure | None:
    """Medians as bars with the quartiles as whiskers (hidden stats are missing)."""
    if df.empty or df[y].notna().sum() == 0:
        return None
    med, lo, hi = (num(df[c], errors="coerce") for c in (y, low, high))
    nn = num(df[n], errors="coerce")
    xs = [
        f"{(x_labels or {}).get(v, pretty(v))}<br><b>{'hidden' if pd.isna(m) else f'{m:,.0f}'}</b>"
        for v, m in zip(df[x], med)
    ]
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=med,
            marker=dict(color=[level_colour(v) for v in df[x]]),
            width=0.6,
            error_y=dict(
                type="data",
                symmetric=False,
                array=(hi - med).to_numpy(dtype=float),
                arrayminus=(med - lo).to_numpy(dtype=float),
                color="#555",
                thickness=1.2,
            ),
            customdata=np.column_stack([lo.to_numpy(dtype=float), hi.to_numpy(dtype=float), nn.to_numpy(dtype=float)]),
            hovertemplate=f"%{{x}}<br>median %{{y:,.1f}} {unit} (quartiles %{{customdata[0]:,.1f}}–%{{customdata[1]:,.1f}})"
            "<br>n = %{customdata[2]:,.0f}<extra></extra>",
            showlegend=False,
        )
    )
    fig = finish(fig, title, height, percent=False, y_title=unit.capitalize())
    fig.update_xaxes(tickangle=0)
    return fig


def rate_heatmap(
    df: pd.DataFrame,
    x: str,
    y: str,
    z: str,
    n: str,
    threshold: int = UNSTABLE_BELOW,
    title: str | None = None,
    x_label: str | None = None,
    y_label: str | None = None,
    height: int | None = None,
) -> go.Figure | None:
    """Rates on a grid (e.g. admission month by week): hidden cells blank, unstable ones in brackets."""
    if df.empty or df[z].notna().sum() == 0:
        return None
    cells = df.groupby([y, x])  # one grid of rows y by columns x, both in order, for the values, n and presence
    values = cells[z].first().unstack()
    counts = cells[n].first().astype("float64").unstack().reindex_like(values)
    rows = [tick(i) for i in values.index]
    present = cells.size().unstack().reindex_like(values)
    text = [
        [
            ("hidden" if pd.notna(r) else "")
            if pd.isna(v)
            else (f"({v:.0%})" if pd.notna(c) and c < threshold else f"{v:.0%}")
            for v, c, r in zip(vr, cr, rr)
        ]
        for vr, cr, rr in zip(values.to_numpy(), counts.to_numpy(), present.to_numpy())
    ]
    fig = go.Figure(
        go.Heatmap(
            z=values.to_numpy(dtype=float),
            x=[tick(c) for c in values.columns],
            y=rows,
            text=text,
            texttemplate="%{text}",
            textfont=dict(size=11),
            colorscale="Viridis",
            zmin=0,
            zmax=1,
            hovertext=text,
            colorbar=dict(tickformat=".0%", thickness=12),
            customdata=counts.to_numpy(dtype=float),
            hovertemplate=f"{y_label or label(y)} %{{y}}, {x_label or label(x)} %{{x}}: %{{z:.1%}}"
            "<br>n = %{customdata:,.0f}<extra></extra>",
            hoverongaps=False,
            xgap=1,
            ygap=1,
        )
    )
    themed(fig).update_layout(
        title=dict(text=title) if title else None, height=height or max(260, 26 * len(rows) + 110)
    )
    fig.update_xaxes(title_text=x_label or label(x), showgrid=False, type="category")
    fig.update_yaxes(title_text=None, autorange="reversed", showgrid=False, type="category")
    return fig


def facet_rates(
    df: pd.DataFrame,
    x: str,
    measures: dict[str, str],
    facet: str,
    color: str,
    n: str,
    threshold: int = UNSTABLE_BELOW,
    height: int = 440,
) -> go.Figure | None:
    """Rows of measures by columns of `facet` values, one line per `color` group in each panel."""
    from plotly.subplots import make_subplots

    if df.empty or df[list(measures)].notna().sum().sum() == 0:
        return None
    facets = list(dict.fromkeys(df[facet]))
    groups = list(dict.fromkeys(df[color]))
    fig = make_subplots(
        rows=len(measures),
        cols=len(facets),
        shared_xaxes=True,
        shared_yaxes=True,
        column_titles=[pretty(f) for f in facets],
        row_titles=list(measures.values()),
        horizontal_spacing=0.035,
        vertical_spacing=0.08,
    )
    parts = {key: part.sort_values(x) for key, part in df.groupby([facet, color], sort=False)}
    traces, rows, cols = [], [], []  # added in one go: one check of each trace instead of two
    for r, (col, name) in enumerate(measures.items(), start=1):
        for c, f in enumerate(facets, start=1):
            if df.loc[df[facet] == f, col].notna().sum() == 0:
                k = (r - 1) * len(facets) + c
                xd, yd = (
                    fig.layout[f"xaxis{k if k > 1 else ''}"].domain,
                    fig.layout[f"yaxis{k if k > 1 else ''}"].domain,
                )
                fig.add_annotation(
                    text="all hidden<br>(1–10)",
                    showarrow=False,
                    xref="paper",
                    yref="paper",
                    x=(xd[0] + xd[1]) / 2,
                    y=(yd[0] + yd[1]) / 2,
                    font=dict(color="#777", size=11),
                )
            for i, g in enumerate(groups):
                part = parts.get((f, g))
                if part is None:
                    continue
                colour = series_colour(i)
                traces.append(
                    dict(
                        type="scatter",
                        x=part[x],
                        y=part[col],
                        name=pretty(g),
                        legendgroup=str(g),
                        showlegend=(r == 1 and c == 1),
                        mode="lines+markers",
                        line=dict(color=colour, width=1.5),
                        marker=dict(
                            size=5,
                            color=colour,
                            symbol=marker_symbols(part[n], threshold),
                            line=dict(width=1.5, color=colour),
                        ),
                        customdata=num(part[n], errors="coerce").to_numpy(dtype=float),
                        hovertemplate=f"{g}, {f}<br>%{{x|%d %b %Y}}: {name} %{{y:.1%}}"
                        "<br>n = %{customdata:,.0f}<extra></extra>",
                    )
                )
                rows.append(r)
                cols.append(c)
    if traces:
        fig.add_traces(traces, rows=rows, cols=cols)
    themed(fig).update_layout(
        height=height, hovermode="closest", legend=dict(orientation="h", yanchor="bottom", y=1.06, x=0, title=None)
    )
    xs = pd.to_datetime(df[x])
    fig.update_xaxes(
        tickformat="%b", nticks=3, range=[xs.min() - pd.Timedelta(days=4), xs.max() + pd.Timedelta(days=4)]
    )
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", range=[0, 1])
    return fig
