"""Clients moving on: survival-style curves, referral funnels, Sankey paths between levels; tables as figures."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from outcomes.measures.stats import UNSTABLE_BELOW
from outcomes.present import hidden
from outcomes.present.theme import (
    LEVEL_COLOURS,
    alpha,
    figure_of,
    finish,
    finished_layout,
    label,
    level_colour,
    marker_symbols,
    merged,
    num,
    pretty,
    series_colour,
    themed,
    vline,
)

SHORT = {"withdrawal_management": "Withdrawal mgmt"}  # node labels that would run into the next column

CURVE_NOTE = (
    "Days are merged into one step until it holds no event or 11 or more, so that a small daily count "
    "cannot be read from the curve; markers sit on the days shown."
)


def curves(
    df: pd.DataFrame,
    x: str,
    y: str,
    n: str,
    color: str | None = None,
    threshold: int = UNSTABLE_BELOW,
    marks: tuple = (),
    title: str | None = None,
    y_label: str | None = None,
    x_label: str = "Days",
    height: int = 380,
    hover_word: str = "",
) -> go.Figure | None:
    """Step curves (Kaplan-Meier style) by group: solid while n >= threshold, dotted after; values at `marks`.

    Days whose value is hidden are left out, so the curve steps straight from one shown day to the next.
    """
    if df.empty or df[y].notna().sum() == 0:
        return None
    traces = []
    groups = [(label(y), df)] if color is None else list(df.groupby(color, sort=False, dropna=False))
    groups, dropped = _drawable(groups, x, y, n, threshold)
    for i, (name, g) in enumerate(groups):
        # a hidden day is skipped: the step from the last shown day runs on to the next shown one
        g = g[g[y].notna()].sort_values(x).reset_index(drop=True)
        colour = series_colour(i)
        name = pretty(name)
        nn = num(g[n], errors="coerce")
        low = nn.lt(threshold) & nn.notna()
        cut = int(low.to_numpy().argmax()) if low.any() else len(g)
        custom = nn.to_numpy(dtype=float)
        hover = f"{name}<br>{x_label} %{{x}}: %{{y:.1%}}{hover_word}<br>n = %{{customdata:,.0f}}<extra></extra>"
        solid, dotted = g.iloc[:cut], g.iloc[max(cut - 1, 0) :]
        if cut > 0:
            traces.append(
                dict(
                    type="scatter",
                    x=solid[x],
                    y=solid[y],
                    name=str(name),
                    mode="lines" if len(g) > 1 else "markers",
                    legendgroup=str(name),
                    marker=dict(color=colour),
                    line=dict(color=colour, shape="hv", width=2.5),
                    customdata=custom[:cut],
                    hovertemplate=hover,
                )
            )
        if cut < len(g):
            traces.append(
                dict(
                    type="scatter",
                    x=dotted[x],
                    y=dotted[y],
                    name=str(name) if cut == 0 else f"{name} (n < {threshold})",
                    mode="lines" if len(g) > 1 else "markers",
                    marker=dict(color=colour, symbol="circle-open"),
                    legendgroup=str(name),
                    showlegend=cut == 0,
                    line=dict(color=colour, shape="hv", width=1.5, dash="dot"),
                    customdata=custom[max(cut - 1, 0) :],
                    hovertemplate=hover,
                )
            )
        at = g[g[x].isin(marks) & g[y].notna()]
        if len(at):
            traces.append(
                dict(
                    type="scatter",
                    x=at[x],
                    y=at[y],
                    mode="markers",
                    legendgroup=str(name),
                    showlegend=False,
                    marker=dict(
                        size=9, color=colour, symbol=marker_symbols(at[n], threshold), line=dict(width=2, color=colour)
                    ),
                    customdata=num(at[n], errors="coerce").to_numpy(dtype=float),
                    hovertemplate=hover,
                    name=str(name),
                )
            )
    shapes = [vline(m, dict(color="#ccc", dash="dot", width=1))[0] for m in marks]
    notes, more = [], {}
    if dropped:
        notes = [
            dict(
                text="Not drawn: " + "; ".join(dropped),
                xref="paper",
                yref="paper",
                x=0,
                y=-0.3,
                xanchor="left",
                yanchor="top",
                showarrow=False,
                font=dict(size=11, color="#555"),
            )
        ]
        more = dict(margin=dict(b=95))
    top = int(num(df[x]).max())
    step = 30 if top > 60 else 7
    ticks = sorted({0, *marks} | {t for t in range(0, top + 1, step) if all(abs(t - m) > step / 3 for m in marks)})
    layout = merged(
        finished_layout(title, height, True, y_label),
        more,
        dict(xaxis=dict(title=dict(text=x_label), tickvals=ticks), shapes=shapes, annotations=notes),
    )
    return figure_of(traces, layout)


def _drawable(groups: list, x: str, y: str, n: str, threshold: int) -> tuple[list, list[str]]:
    """The groups worth a curve, and what the others are, in words. A group with no shown day has no curve; one
    that starts with fewer than `threshold` is left out when larger groups are drawn (a few points of a
    handful of episodes, e.g. an unknown track, read as a real pattern beside them)."""
    keep, dropped = [], []
    for name, g in groups:
        shown = g[g[y].notna()].sort_values(x)
        start = num(shown[n], errors="coerce").iloc[0] if len(shown) else float("nan")
        if shown.empty:
            dropped.append(f"{pretty(name)} (every value hidden)")
        else:
            keep.append((name, g, start))
    if any(start >= threshold for _, _, start in keep):
        for name, _, start in keep:
            if not start >= threshold:
                dropped.append(f"{pretty(name)} (fewer than {threshold} at the start)")
        keep = [k for k in keep if k[2] >= threshold]
    return [(name, g) for name, g, _ in keep], dropped


def funnel(
    df: pd.DataFrame,
    stages: dict[str, str],
    group: str,
    rates: dict[str, str] | None = None,
    title: str | None = None,
    height: int = 320,
    reasons: pd.DataFrame | None = None,
) -> go.Figure | None:
    """A funnel per group (site): counts at each stage, with the query's own rate in brackets when shown. A
    hidden stage is a grey bar as wide as the last shown stage before it, labelled "1–10" or "hidden", so it
    never reads as nobody."""
    if df.empty or df[list(stages)].notna().sum().sum() == 0:
        return None
    fig = go.Figure()
    for i, (at, row) in enumerate(df.iterrows()):
        counts = num([row[c] for c in stages])
        why = [hidden.reason_of(reasons, [at], [c])[0] for c in stages]
        gone = counts.isna().to_numpy()
        widths = hidden.heights(counts, hidden.fallback_height(counts, False))
        text = []
        for c, v, g, w in zip(stages, counts, gone, why):
            r = row.get((rates or {}).get(c)) if rates and c in rates else None
            t = hidden.words(w, count=True) if g else f"{int(v):,}"
            text.append(t + (f" ({r:.0%} of referred)" if r is not None and pd.notna(r) else ""))
        colour = series_colour(i)
        fig.add_trace(
            go.Funnel(
                name=str(row[group]),
                y=list(stages.values()),
                x=[float(wd) if g else float(v) for v, g, wd in zip(counts, gone, widths)],
                customdata=text,
                text=[hidden.tag(w, count=True) if g else t.split(" (")[0] for t, g, w in zip(text, gone, why)],
                textinfo="text",
                textposition="inside",
                insidetextanchor="middle",
                textfont=dict(size=12, color=["#333" if g else "white" for g in gone]),
                marker=dict(
                    color=[hidden.FILL if g else colour for g in gone],
                    line=dict(
                        color=[hidden.COLOUR if g else colour for g in gone], width=[2 if g else 0 for g in gone]
                    ),
                ),
                hovertemplate=f"{row[group]}<br>%{{y}}: %{{customdata}}<extra></extra>",
            )
        )
    return finish(fig, title, height, percent=False)


def sankey(df: pd.DataFrame, source: str, target: str, value: str, title: str | None = None) -> go.Figure | None:
    """Flows between "k. level" nodes: one column per step k, levels in care order, hidden links left out."""
    shown = df.dropna(subset=[value])
    shown = shown[pd.to_numeric(shown[value]) > 0]
    if shown.empty:
        return None
    labels = sorted(set(shown[source]) | set(shown[target]))
    index = {lb: i for i, lb in enumerate(labels)}

    def step(lb: str) -> int:
        head = lb.split(". ", 1)[0]
        return int(head) if head.isdigit() else 1

    def level(lb: str) -> str:
        return lb.split(". ", 1)[-1]

    flow = {
        lb: max(shown.loc[shown[source] == lb, value].sum(), shown.loc[shown[target] == lb, value].sum())
        for lb in labels
    }
    steps = sorted({step(lb) for lb in labels})
    order = list(LEVEL_COLOURS)
    xs, ys = {}, {}
    columns = {
        k: sorted(
            (lb for lb in labels if step(lb) == k),
            key=lambda lb: order.index(level(lb)) if level(lb) in order else len(order),
        )
        for k in steps
    }
    gap = 0.05  # of the height, between two nodes of a column
    scale = max(sum(flow[lb] for lb in col) for col in columns.values()) or 1
    room = 1 - gap * (max(len(col) for col in columns.values()) - 1)
    for k, column in columns.items():
        y = 0.0
        for lb in column:
            share = flow[lb] / scale * room
            ys[lb] = min(max(y + share / 2, 0.001), 0.999)
            y += share + gap
            xs[lb] = 0.001 + 0.998 * (steps.index(k) / max(len(steps) - 1, 1))
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node=dict(
                # short names: a label of the last column sits left of its node, beside the column before
                label=[SHORT.get(level(lb), pretty(level(lb))) for lb in labels],
                pad=14,
                thickness=16,
                x=[xs[lb] for lb in labels],
                y=[ys[lb] for lb in labels],
                color=[level_colour(level(lb)) for lb in labels],
                customdata=[f"Step {step(lb)}: {pretty(level(lb))}" for lb in labels],
                hovertemplate="%{customdata}: %{value:,.0f}<extra></extra>",
            ),
            link=dict(
                source=shown[source].map(index),
                target=shown[target].map(index),
                value=shown[value],
                color=[alpha(level_colour(level(a)), 0.3) for a in shown[source]],
                customdata=[
                    f"{pretty(level(a))} (step {step(a)}) → {pretty(level(b))} (step {step(b)})"
                    for a, b in zip(shown[source], shown[target])
                ],
                hovertemplate="%{customdata}: %{value:,.0f}<extra></extra>",
            ),
        )
    )
    for i, k in enumerate(steps):
        fig.add_annotation(
            x=i / max(len(steps) - 1, 1),
            y=1.06,
            xref="paper",
            yref="paper",
            showarrow=False,
            text=f"<b>Step {k}</b>",
            font=dict(size=12, color="#555"),
            xanchor="left" if i == 0 else "right" if i == len(steps) - 1 else "center",
        )
    themed(fig).update_layout(title=title, height=480, margin=dict(t=50, r=16, l=16))
    return fig


def table_figure(df: pd.DataFrame, title: str | None = None) -> go.Figure:
    """A plain table as a figure, for static exports (e.g. the Overview tiles in the page PDF)."""
    fig = go.Figure(
        go.Table(
            header=dict(
                values=[f"<b>{c}</b>" for c in df.columns], fill_color="#f0f0f0", align="left", font=dict(size=14)
            ),
            cells=dict(
                values=[df[c].astype(str).tolist() for c in df.columns], align="left", height=30, font=dict(size=14)
            ),
        )
    )
    themed(fig).update_layout(title=dict(text=title) if title else None, height=90 + 32 * (len(df) + 1))
    return fig
