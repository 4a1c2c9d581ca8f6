"""Plotly figures from a query's `chart` header, in one theme with a colour-blind-safe palette."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

from .catalog import Query

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
RATE_WORDS = ("rate", "share", "retained", "ci_low", "ci_high")

pio.templates["outcomes"] = go.layout.Template(
    layout=dict(
        font=dict(family="Source Sans Pro, Arial, sans-serif", size=13),
        colorway=PALETTE,
        plot_bgcolor="white",
        paper_bgcolor="white",
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(showgrid=False, linecolor="#999"),
        yaxis=dict(gridcolor="#eee", zeroline=False),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        hoverlabel=dict(font_size=13),
    )
)
TEMPLATE = "simple_white+outcomes"


def label(column: str) -> str:
    return column.replace("_", " ").capitalize()


def is_rate(column: str) -> bool:
    return any(w in column for w in RATE_WORDS)


def _axis_format(fig: go.Figure, column: str | None, axis: str = "y") -> None:
    if column and is_rate(column):
        fig.update_layout({f"{axis}axis": dict(tickformat=".0%", rangemode="tozero")})


def figure(query: Query, df: pd.DataFrame, title: str | None = None) -> go.Figure | None:
    """The chart declared by the query header, drawn from already-suppressed data; None for `table`."""
    spec = query.chart
    kind = spec.get("kind")
    if not kind or kind == "table" or df.empty:
        return None
    x, y, color = spec.get("x"), spec.get("y"), spec.get("color")
    hover = [c for c in df.columns if c not in (x, y, color)]
    labels = {c: label(c) for c in df.columns}
    common = dict(template=TEMPLATE, title=title, color_discrete_sequence=PALETTE, labels=labels)
    if kind in ("line", "step"):
        fig = px.line(df, x=x, y=y, color=color, markers=True, hover_data=hover,
                      line_shape="hv" if kind == "step" else "linear", **common)
    elif kind == "bar":
        fig = px.bar(df, x=x, y=y, color=color, barmode=spec.get("barmode", "group"), hover_data=hover, **common)
    elif kind == "area":
        fig = px.area(df, x=x, y=y, color=color, hover_data=hover, **common)
    elif kind == "scatter":
        fig = px.scatter(df, x=x, y=y, color=color, hover_data=hover, **common)
    elif kind == "funnel":
        fig = px.funnel(df, x=x, y=y, color=color, **common)
    elif kind == "heatmap":
        fig = heatmap(df, x, y, spec.get("z"), title)
    elif kind == "sankey":
        fig = sankey(df, spec.get("source", "source"), spec.get("target", "target"), spec.get("value", "transitions"), title)
    else:
        return None
    _axis_format(fig, y if kind != "heatmap" else None)
    fig.update_layout(title=dict(text=title) if title else None)
    return fig


def heatmap(df: pd.DataFrame, x: str, y: str, z: str, title: str | None = None) -> go.Figure:
    grid = df.pivot_table(index=y, columns=x, values=z, aggfunc="first", dropna=False)
    grid.index = [str(i)[:10] for i in grid.index]
    fig = px.imshow(grid, color_continuous_scale="Viridis", aspect="auto", template=TEMPLATE, title=title,
                    labels=dict(x=x, y=y, color=z), zmin=0, zmax=1 if is_rate(z) else None, text_auto=".0%" if is_rate(z) else True)
    if is_rate(z):
        fig.update_coloraxes(colorbar_tickformat=".0%")
    return fig


def sankey(df: pd.DataFrame, source: str, target: str, value: str, title: str | None = None) -> go.Figure:
    shown = df.dropna(subset=[value])
    labels = sorted(set(shown[source]) | set(shown[target]))
    index = {label: i for i, label in enumerate(labels)}
    fig = go.Figure(go.Sankey(
        node=dict(label=labels, pad=18, thickness=16, color=[PALETTE[hash(lb.split(". ")[-1]) % 6] for lb in labels]),
        link=dict(source=shown[source].map(index), target=shown[target].map(index), value=shown[value]),
    ))
    fig.update_layout(template=TEMPLATE, title=title)
    return fig


def p_chart(df: pd.DataFrame, x: str, limits: pd.DataFrame, title: str | None = None, benchmark: tuple | None = None) -> go.Figure:
    """A p-chart: observed rates, centre line, limits that vary with n, points outside marked."""
    fig = go.Figure()
    fig.add_scatter(x=df[x], y=limits["ucl"], name="upper limit", line=dict(color="#999", dash="dot", shape="hvh"))
    fig.add_scatter(x=df[x], y=limits["lcl"], name="lower limit", line=dict(color="#999", dash="dot", shape="hvh"))
    fig.add_scatter(x=df[x], y=limits["center"], name="centre line", line=dict(color="#555"))
    fig.add_scatter(x=df[x], y=limits["p"], name="rate", mode="lines+markers", line=dict(color=PALETTE[0]),
                    customdata=df[["ci_low", "ci_high", "n"]].to_numpy() if {"ci_low", "ci_high", "n"} <= set(df.columns) else None,
                    hovertemplate="%{x|%b %Y}: %{y:.1%}<br>95% CI %{customdata[0]:.1%}–%{customdata[1]:.1%}<br>n = %{customdata[2]:,}<extra></extra>")
    out = limits["outside"].fillna(False).astype(bool)
    if out.any():
        fig.add_scatter(x=df[x][out], y=limits["p"][out], name="outside limits", mode="markers",
                        marker=dict(color=PALETTE[5], size=12, symbol="diamond"))
    if benchmark:
        value, label = benchmark
        fig.add_hline(y=value, line=dict(color=PALETTE[2], dash="dash"), annotation_text=label)
    fig.update_layout(template=TEMPLATE, title=title, yaxis=dict(tickformat=".0%", rangemode="tozero"))
    return fig


def rate_p_chart(df: pd.DataFrame, x: str, events: str, n: str, title: str | None = None,
                 benchmark: tuple | None = None) -> go.Figure | None:
    """p-chart over the rows whose counts are shown; suppressed rows are left out of the limits too."""
    from .stats import p_chart as limits_of

    shown = df.dropna(subset=[events, n]).reset_index(drop=True)
    shown = shown[shown[n] > 0].reset_index(drop=True)
    if shown.empty:
        return None
    limits = limits_of(shown[events].astype(float), shown[n].astype(float))
    data = shown.assign(n=shown[n])
    return p_chart(data, x, limits, title, benchmark)
