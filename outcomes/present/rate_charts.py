"""Rates and medians: lines over time, grouped bars, medians with quartiles, heat maps, small multiples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from outcomes.measures.stats import UNSTABLE_BELOW
from outcomes.present import hidden
from outcomes.present.theme import (
    PALETTE,
    benchmark_marks,
    figure_of,
    finish,
    finished_layout,
    grid_layout,
    label,
    level_colour,
    marker_symbols,
    merged,
    num,
    pretty,
    rate_range,
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
    reasons: pd.DataFrame | None = None,
    count_columns: tuple = (),
) -> go.Figure | None:
    """Lines over x, one per `color` group; an unstable value a hollow marker; a hidden one a gap in the line
    with a grey placeholder (outcomes.present.hidden) saying why."""
    if df.empty or df[y].notna().sum() == 0:
        return None
    groups = [(None, df)] if color is None else list(df.groupby(color, sort=False, dropna=False))
    value = "%{y:.1%}" if percent else "%{y:,.1f}"
    traces = []
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
    # where a value is hidden, a hollow grey square beside the series' shown values (never on zero)
    fallback = hidden.fallback_height(df[y], percent)
    first = True
    for name, g in groups:
        g = g.sort_values(x)
        gone = g[y].isna().to_numpy()
        if not gone.any():
            continue
        why = hidden.reason_of(reasons, g.index[gone], [y, *([n] if n else [])])
        label_of = "" if name is None else pretty(name) + ", "
        traces.append(
            hidden.marker(
                g[x][gone],
                hidden.heights(g[y], fallback)[gone],
                [hidden.words(w, count=y in count_columns) for w in why],
                showlegend=first,
                prefix=label_of,
                x_format=x_hover(g[x]),
            )
        )
        first = False
    shapes, labels = benchmark_marks(benchmark)
    layout = merged(
        finished_layout(title, height, percent, y_label),
        dict(yaxis=dict(range=rate_range(traces, benchmark))) if percent else {},
        dict(shapes=shapes, annotations=labels),
    )
    return figure_of(traces, layout)


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
    reasons: pd.DataFrame | None = None,
) -> go.Figure | None:
    """Grouped bars of one or more rates by x; unstable bars hatched; a hidden one a grey cross-hatched
    placeholder labelled "too few" or "hidden"."""
    if df.empty or df[list(ys)].notna().sum().sum() == 0:
        return None
    traces = []
    xs = [(x_labels or {}).get(v, pretty(v)) for v in df[x]]
    nn = num(df[n], errors="coerce") if n else pd.Series(np.nan, index=df.index)
    unstable = (nn < threshold).to_numpy()
    fallback = hidden.fallback_height(df[list(ys)].stack(), True)
    for i, (col, name) in enumerate(ys.items()):
        vals = num(df[col], errors="coerce")
        gone = vals.isna().to_numpy()
        why = hidden.reason_of(reasons, df.index, [col])
        at = np.where(gone, hidden.heights(vals, fallback), vals.to_numpy(dtype=float))
        colour = series_colour(i)
        n_text = ["" if not n or pd.isna(c) else f"<br>n = {c:,.0f}" for c in nn]
        traces.append(
            dict(
                type="bar",
                x=xs,
                y=at,
                name=name,
                marker=dict(
                    color=[hidden.FILL if g else colour for g in gone],
                    line=dict(color=[hidden.COLOUR if g else colour for g in gone], width=1),
                    pattern=dict(
                        shape=["x" if g else "/" if u else "" for g, u in zip(gone, unstable)],
                        fgcolor=[hidden.COLOUR if g else "#444" for g in gone],
                        fillmode="overlay",
                        solidity=0.4,
                    ),
                ),
                text=[
                    hidden.tag(w) if g else (f"({v:.0%})" if u else f"{v:.0%}")
                    for v, u, g, w in zip(vals, unstable, gone, why)
                ],
                textposition="outside",
                cliponaxis=False,
                hovertext=[hidden.words(w) if g else f"{v:.1%}{t}" for v, g, w, t in zip(vals, gone, why, n_text)],
                hovertemplate=f"%{{x}}<br>{name}: %{{hovertext}}<extra></extra>",
            )
        )
    shapes, labels = benchmark_marks(benchmark)
    layout = merged(
        dict(barmode="group", bargap=0.3),
        finished_layout(title, height, True),
        dict(yaxis=dict(range=rate_range(traces, benchmark)), shapes=shapes, annotations=labels),
    )
    return figure_of(traces, layout)


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
    reasons: pd.DataFrame | None = None,
) -> go.Figure | None:
    """Medians as bars with the quartiles as whiskers; a hidden median a grey cross-hatched placeholder."""
    if df.empty or df[y].notna().sum() == 0:
        return None
    med, lo, hi = (num(df[c], errors="coerce") for c in (y, low, high))
    nn = num(df[n], errors="coerce")
    gone = med.isna().to_numpy()
    why = hidden.reason_of(reasons, df.index, [y, n])
    xs = [
        f"{(x_labels or {}).get(v, pretty(v))}<br><b>{hidden.tag(w) if g else f'{m:,.0f}'}</b>"
        for v, m, g, w in zip(df[x], med, gone, why)
    ]
    hover = [
        hidden.words(w)
        if g
        else f"median {m:,.1f} {unit} (quartiles {a:,.1f}–{b:,.1f})<br>n = {c:,.0f}".replace("nan", "?")
        for m, a, b, c, g, w in zip(med, lo, hi, nn, gone, why)
    ]
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=np.where(gone, hidden.heights(med, hidden.fallback_height(med, False)), med.to_numpy(dtype=float)),
            marker=dict(
                color=[hidden.FILL if g else level_colour(v) for v, g in zip(df[x], gone)],
                line=dict(color=[hidden.COLOUR if g else level_colour(v) for v, g in zip(df[x], gone)], width=1),
                pattern=dict(shape=["x" if g else "" for g in gone], fgcolor=hidden.COLOUR, fillmode="overlay"),
            ),
            width=0.6,
            error_y=dict(
                type="data",
                symmetric=False,
                array=(hi - med).to_numpy(dtype=float),
                arrayminus=(med - lo).to_numpy(dtype=float),
                color="#555",
                thickness=1.2,
            ),
            hovertext=hover,
            hovertemplate="%{x}<br>%{hovertext}<extra></extra>",
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
    reasons: pd.DataFrame | None = None,
) -> go.Figure | None:
    """Rates on a grid (e.g. admission month by week): hidden cells grey and labelled "too few" or "hidden",
    unstable ones in brackets."""
    if df.empty or df[z].notna().sum() == 0:
        return None
    tags = [hidden.tag(w) for w in hidden.reason_of(reasons, df.index, [z])]
    cells = df.assign(_tag=tags).groupby([y, x])  # one grid of rows y by columns x, both in order
    values = cells[z].first().unstack()
    counts = cells[n].first().astype("float64").unstack().reindex_like(values)
    rows = [tick(i) for i in values.index]
    present = cells["_tag"].first().unstack().reindex_like(values)
    text = [
        [
            (r if isinstance(r, str) else "")
            if pd.isna(v)
            else (f"({v:.0%})" if pd.notna(c) and c < threshold else f"{v:.0%}")
            for v, c, r in zip(vr, cr, rr)
        ]
        for vr, cr, rr in zip(values.to_numpy(), counts.to_numpy(), present.to_numpy())
    ]
    columns = [tick(c) for c in values.columns]
    gone = values.isna().to_numpy() & present.notna().to_numpy()  # a row that is hidden, not a cell with no row
    narrow = len(values.columns) > 8  # a hidden cell's label would run into its neighbours: the hover says it
    fig = go.Figure(
        go.Heatmap(  # under the rates: a grey cell wherever a rate is hidden, never a blank that reads as none
            z=np.where(gone, 1.0, np.nan),
            x=columns,
            y=rows,
            text=[[t if g else "" for t, g in zip(tr, gr)] for tr, gr in zip(text, gone)],
            texttemplate="" if narrow else "%{text}",
            textfont=dict(size=11, color="#333"),
            colorscale=[[0, hidden.FILL], [1, hidden.FILL]],
            showscale=False,
            hovertemplate=f"{y_label or label(y)} %{{y}}, {x_label or label(x)} %{{x}}: %{{text}}<extra></extra>",
            hoverongaps=False,
            xgap=1,
            ygap=1,
        )
    )
    fig.add_trace(
        go.Heatmap(
            z=values.to_numpy(dtype=float),
            x=columns,
            y=rows,
            text=[[t if not g else "" for t, g in zip(tr, gr)] for tr, gr in zip(text, gone)],
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
    reasons: pd.DataFrame | None = None,
) -> go.Figure | None:
    """Rows of measures by columns of `facet` values, one line per `color` group in each panel; hidden values
    are grey placeholders beside the line."""
    if df.empty or df[list(measures)].notna().sum().sum() == 0:
        return None
    facets = sorted(dict.fromkeys(df[facet]), key=str)  # the same order whatever the filters leave
    groups = sorted(dict.fromkeys(df[color]), key=str)
    layout = grid_layout(
        len(measures),
        len(facets),
        shared_xaxes=True,
        shared_yaxes=True,
        column_titles=tuple(pretty(f) for f in facets),
        row_titles=tuple(measures.values()),
        horizontal_spacing=0.035,
        vertical_spacing=0.08,
    )
    parts = {key: part.sort_values(x) for key, part in df.groupby([facet, color], sort=False)}
    traces, rows, cols = [], [], []  # added in one go: one check of each trace instead of two
    for r, (col, name) in enumerate(measures.items(), start=1):
        for c, f in enumerate(facets, start=1):
            if df.loc[df[facet] == f, col].notna().sum() == 0:
                k = (r - 1) * len(facets) + c
                xd, yd = layout[f"xaxis{k if k > 1 else ''}"]["domain"], layout[f"yaxis{k if k > 1 else ''}"]["domain"]
                layout["annotations"].append(hidden.panel_note(xd, yd))
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
                gone = part[col].isna().to_numpy()
                if gone.any() and part[col].notna().any():
                    why = hidden.reason_of(reasons, part.index[gone], [col])
                    traces.append(
                        hidden.marker(
                            part[x][gone],
                            hidden.heights(part[col], hidden.fallback_height(part[col]))[gone],
                            [hidden.words(w) for w in why],
                            showlegend=not any(t.get("legendgroup") == "hidden" for t in traces),
                            prefix=f"{pretty(g)}, {pretty(f)}, {name}: ",
                            x_format="%{x|%d %b %Y}",
                        )
                        | dict(marker=dict(symbol=hidden.SYMBOL, size=6, color=hidden.COLOUR))
                    )
                    rows.append(r)
                    cols.append(c)
    for trace, r, c in zip(traces, rows, cols):
        k = (r - 1) * len(facets) + c
        trace.update(xaxis=f"x{k if k > 1 else ''}", yaxis=f"y{k if k > 1 else ''}")
    # unchecked: Plotly's checks of each of these properties were most of the time to draw the page; the tests
    # build every chart kind checked (tests/test_chart_marks.py)
    xs = pd.to_datetime(df[x])
    span = [xs.min() - pd.Timedelta(days=4), xs.max() + pd.Timedelta(days=4)]
    for name, axis in layout.items():
        if name.startswith("xaxis"):
            axis.update(tickformat="%b", nticks=3, range=span)
        elif name.startswith("yaxis"):
            axis.update(tickformat=".0%", rangemode="tozero", range=[0, 1])
    legend = dict(orientation="h", yanchor="bottom", y=1.06, x=0, title={})
    return figure_of(traces, layout | dict(height=height, hovermode="closest", legend=legend))
