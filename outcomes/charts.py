"""Plotly figures from a query's `chart` header, in one theme with a colour-blind-safe palette."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

from .catalog import Query

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
RATE_WORDS = ("rate", "share", "retained", "ci_low", "ci_high")
UNSTABLE_BELOW = 30  # rates over fewer than this many are drawn hollow

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
_THEME = pio.templates[TEMPLATE]  # the two merged once: merging and checking them took most of a figure's build


def _themed(fig: go.Figure) -> go.Figure:
    """`fig` with the TEMPLATE theme: what update_layout(template=TEMPLATE) gives, from the template merged and
    checked once (as plotly itself sets its default template on every new figure)."""
    layout = fig.layout
    validate, layout._validate = layout._validate, False
    try:
        layout.template = _THEME  # stored as a copy of its properties
    finally:
        layout._validate = validate
    return fig


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

    flow = {lb: max(shown.loc[shown[source] == lb, value].sum(), shown.loc[shown[target] == lb, value].sum())
            for lb in labels}
    steps = sorted({step(lb) for lb in labels})
    order = list(LEVEL_COLOURS)
    xs, ys = {}, {}
    columns = {k: sorted((lb for lb in labels if step(lb) == k),
                         key=lambda lb: order.index(level(lb)) if level(lb) in order else len(order)) for k in steps}
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
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node=dict(label=[pretty(level(lb)) for lb in labels], pad=14, thickness=16,
                  x=[xs[lb] for lb in labels], y=[ys[lb] for lb in labels],
                  color=[level_colour(level(lb)) for lb in labels],
                  customdata=[f"Step {step(lb)}: {pretty(level(lb))}" for lb in labels],
                  hovertemplate="%{customdata}: %{value:,.0f}<extra></extra>"),
        link=dict(source=shown[source].map(index), target=shown[target].map(index), value=shown[value],
                  color=[_alpha(level_colour(level(a)), 0.3) for a in shown[source]],
                  customdata=[f"{pretty(level(a))} (step {step(a)}) → {pretty(level(b))} (step {step(b)})"
                              for a, b in zip(shown[source], shown[target])],
                  hovertemplate="%{customdata}: %{value:,.0f}<extra></extra>"),
    ))
    for i, k in enumerate(steps):
        fig.add_annotation(x=i / max(len(steps) - 1, 1), y=1.06, xref="paper", yref="paper", showarrow=False,
                           text=f"<b>Step {k}</b>", font=dict(size=12, color="#555"),
                           xanchor="left" if i == 0 else "right" if i == len(steps) - 1 else "center")
    _themed(fig).update_layout(title=title, height=480, margin=dict(t=50))
    return fig


def p_chart(df: pd.DataFrame, x: str, limits: pd.DataFrame, title: str | None = None, benchmark: tuple | None = None,
            threshold: int = UNSTABLE_BELOW) -> go.Figure:
    """A p-chart: observed rates, centre line, limits that vary with n, points outside marked.

    `df` holds the x column, `n` and, when known, Wilson `ci_low`/`ci_high` (shown on hover); `limits` is
    stats.p_chart on the same rows. A row with a missing n (hidden) is a gap. Points with n under
    `threshold` are hollow: too few for a stable rate.
    """
    fig = go.Figure()
    _add_p_chart(fig, df, x, limits, threshold)
    add_benchmark(fig, benchmark)
    _themed(fig).update_layout(title=title, yaxis=dict(tickformat=".0%", rangemode="tozero"),
                               hovermode="closest")
    _fit_rate_axis(fig, benchmark)
    return fig


def _add_p_chart(fig: go.Figure, df: pd.DataFrame, x: str, limits: pd.DataFrame, threshold: int,
                 row: int | None = None, col: int | None = None, legend: bool = True) -> None:
    traces = []  # added in one go at the end: one check of each trace instead of two
    xs = df[x].reset_index(drop=True)
    limits = limits.reset_index(drop=True)
    n = pd.to_numeric(df["n"], errors="coerce").astype("float64").reset_index(drop=True)
    for side, show in (("ucl", legend), ("lcl", False)):
        # a dash at each point as well as the stepped line, so a month between two hidden ones has limits too
        traces.append(dict(x=xs, y=limits[side], name="3-sigma limits", mode="lines+markers", legendgroup="limits",
                           showlegend=show, hoverinfo="skip", connectgaps=False,
                           marker=dict(symbol="line-ew", size=14, line=dict(width=1.5, color="#999"), color="#999"),
                           line=dict(color="#999", dash="dot", shape="hvh", width=1)))
    traces.append(dict(x=xs, y=limits["center"].ffill().bfill(), name="centre line", mode="lines",
                       legendgroup="centre", showlegend=legend, hoverinfo="skip", line=dict(color="#555", width=1.5)))
    if {"ci_low", "ci_high"} <= set(df.columns):
        low, high = df["ci_low"].reset_index(drop=True), df["ci_high"].reset_index(drop=True)
    else:
        from .stats import wilson

        low, high = wilson((limits["p"] * n).round().fillna(0), n.fillna(0))
    custom = np.column_stack([pd.to_numeric(pd.Series(low), errors="coerce").to_numpy(dtype=float),
                              pd.to_numeric(pd.Series(high), errors="coerce").to_numpy(dtype=float),
                              n.to_numpy(dtype=float)])
    traces.append(dict(x=xs, y=limits["p"], name="rate", mode="lines+markers", legendgroup="rate",
                       showlegend=legend, connectgaps=False, line=dict(color=PALETTE[0], width=2),
                       marker=dict(size=8, color=PALETTE[0], symbol=marker_symbols(n, threshold),
                                   line=dict(width=2, color=PALETTE[0])),
                       customdata=custom,
                       hovertemplate=_x_hover(xs) + ": %{y:.1%}<br>95% CI %{customdata[0]:.1%}–%{customdata[1]:.1%}"
                                     "<br>n = %{customdata[2]:,.0f}<extra></extra>"))
    hidden = limits["p"].isna().to_numpy()
    if hidden.any():
        traces.append(dict(x=xs[hidden], y=np.zeros(int(hidden.sum())), name="hidden (1–10)", mode="markers",
                           legendgroup="hidden", showlegend=legend, cliponaxis=False,
                           marker=dict(symbol="x-thin", size=9, line=dict(width=1.5, color="#aaa"), color="#aaa"),
                           hovertemplate=_x_hover(xs) + ": hidden (a count of 1–10)<extra></extra>"))
    out = limits["outside"].fillna(False).astype(bool).to_numpy()
    if out.any():
        traces.append(dict(x=xs[out], y=limits["p"][out], name="outside limits", mode="markers",
                           legendgroup="outside", showlegend=legend, hoverinfo="skip",
                           marker=dict(color=PALETTE[5], size=13, symbol="diamond-open", line=dict(width=2))))
    traces = [dict(type="scatter", **t) for t in traces]
    if row:
        fig.add_traces(traces, rows=[row] * len(traces), cols=[col] * len(traces))
    else:
        fig.add_traces(traces)


def _p_chart_frame(df: pd.DataFrame, x: str, events: str, n: str, rate: str | None):
    """Every row in x order with `n`, Wilson bounds and p-chart limits where the counts (and the query's own
    rate, when it has one) are shown; hidden rows keep their x with missing values, so they draw as gaps.

    A rate can be hidden while both its counts are shown (their difference is small); it is not recomputed.
    Returns (frame, limits), or None when no row is shown.
    """
    from .stats import p_chart as limits_of
    from .stats import wilson

    data = df.sort_values(x).reset_index(drop=True)
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
    data = data.assign(n=count.where(ok), ci_low=pd.Series(np.asarray(low), index=shown.index).reindex(data.index),
                       ci_high=pd.Series(np.asarray(high), index=shown.index).reindex(data.index))
    return data, limits


def rate_p_chart(df: pd.DataFrame, x: str, events: str, n: str, title: str | None = None,
                 benchmark: tuple | None = None, rate: str | None = None,
                 threshold: int = UNSTABLE_BELOW) -> go.Figure | None:
    """p-chart over the rows whose counts are shown; suppressed rows are gaps, left out of the limits too."""
    framed = _p_chart_frame(df, x, events, n, rate)
    if framed is None:
        return None
    data, limits = framed
    return p_chart(data, x, limits, title, benchmark, threshold)


# Director pages: every builder takes an already-suppressed table (hidden cells are missing values), draws
# only what is in it, returns None when nothing is left to draw, and marks rates over fewer than
# UNSTABLE_BELOW as unstable (hollow markers, dotted curves, hatched bars, values in brackets).

LEVEL_COLOURS = {"withdrawal_management": PALETTE[3], "residential": PALETTE[0], "php": PALETTE[4],
                 "iop": PALETTE[1], "op": PALETTE[2]}
LEVEL_TICKS = {"withdrawal_management": "Withdrawal<br>mgmt", "residential": "Residential", "php": "PHP",
               "iop": "IOP", "op": "OP"}
BENCHMARK_COLOUR = "#117733"
UNSTABLE_NOTE = "Hollow markers, dotted lines, hatched bars or values in brackets: fewer than {n} in the denominator, so the rate is unstable."


def pretty(value) -> str:
    """A category as people read it: "left_against_advice" -> "Left against advice", "iop" -> "IOP"."""
    text = str(value)
    words = {"iop": "IOP", "php": "PHP", "op": "OP", "stepdown": "step-down"}
    text = ", ".join(" ".join(words.get(w, w) for w in part.split("_")) for part in text.split(", "))
    return text[:1].upper() + text[1:]


def _alpha(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def _tick(value) -> str:
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "strftime"):
        return f"{pd.Timestamp(value):%b %Y}"
    return str(value)


def _num(values, errors: str = "coerce") -> pd.Series:
    """Numbers as float64 with NaN for missing (nullable Int64 with <NA> would make comparisons ambiguous)."""
    return pd.to_numeric(pd.Series(values), errors=errors).astype("float64")


def level_colour(level: str) -> str:
    return LEVEL_COLOURS.get(level, "#999999")


def marker_symbols(n, threshold: int = UNSTABLE_BELOW, base: str = "circle") -> list[str]:
    """Open markers where n is under `threshold` (an unstable rate), filled ones elsewhere."""
    values = _num(pd.Series(n), errors="coerce")
    return [f"{base}-open" if pd.notna(v) and v < threshold else base for v in values]


def _x_hover(xs) -> str:
    return "%{x|%b %Y}" if pd.api.types.is_datetime64_any_dtype(pd.Series(xs)) else "%{x}"


def _finish(fig: go.Figure, title: str | None = None, height: int = 360, percent: bool = True,
            y_title: str | None = None) -> go.Figure:
    _themed(fig).update_layout(title=dict(text=title) if title else None, height=height,
                               legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, title=None))
    if percent:
        fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    if y_title:
        fig.update_yaxes(title_text=y_title)
    return fig


def add_benchmark(fig: go.Figure, benchmark) -> None:
    """A dashed reference line with its label; `benchmark` is a Benchmark or a (value, label) pair."""
    if not benchmark:
        return
    value, text = (benchmark.value, benchmark.label) if hasattr(benchmark, "value") else benchmark
    fig.add_hline(y=value, line=dict(color=BENCHMARK_COLOUR, dash="dash", width=1.5), annotation_text=text,
                  annotation_position="top right", annotation_font=dict(color=BENCHMARK_COLOUR, size=12))


def _fit_rate_axis(fig: go.Figure, benchmark=None) -> None:
    # a reference line outside the data would otherwise fall off the chart
    top = 0.0
    for trace in fig.data:
        y = _num(pd.Series(getattr(trace, "y", None) if getattr(trace, "y", None) is not None else []),
                          errors="coerce")
        if len(y.dropna()):
            top = max(top, float(y.max()))
    if benchmark:
        top = max(top, benchmark.value if hasattr(benchmark, "value") else benchmark[0])
    # at least 0 to 10%, so an all-zero series still reads as a rate axis
    fig.update_yaxes(range=[0, max(min(1.0, top * 1.12) if top <= 1 else top * 1.12, 0.1)])


def unstable_count(df: pd.DataFrame, n: str | None, threshold: int = UNSTABLE_BELOW) -> int:
    if not n or n not in df:
        return 0
    v = _num(df[n], errors="coerce")
    return int(((v > 0) & (v < threshold)).sum())


def p_chart_grid(df: pd.DataFrame, group: str, x: str, events: str, n: str, rate: str | None = None,
                 threshold: int = UNSTABLE_BELOW, columns: int = 3, row_height: int = 250) -> go.Figure | None:
    """Small multiples: one p-chart per `group` value (e.g. site), each with its own centre line and limits,
    on one shared y axis and one time range; a group whose values are all hidden says so."""
    from plotly.subplots import make_subplots

    names = list(dict.fromkeys(df[group]))
    if not names:
        return None
    cols = min(columns, len(names))
    rows = -(-len(names) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[str(v) for v in names],
                        horizontal_spacing=0.05, vertical_spacing=0.14)
    span = pd.to_datetime(df[x])
    drawn = False
    for i, name in enumerate(names):
        r, c = i // cols + 1, i % cols + 1
        framed = _p_chart_frame(df[df[group] == name], x, events, n, rate)
        if framed is None:
            xd = fig.layout[f"xaxis{i + 1 if i else ''}"].domain
            yd = fig.layout[f"yaxis{i + 1 if i else ''}"].domain
            fig.add_annotation(text="all values hidden<br>(counts of 1–10)", showarrow=False, xref="paper",
                               yref="paper", x=(xd[0] + xd[1]) / 2, y=(yd[0] + yd[1]) / 2, font=dict(color="#777"))
            # an empty trace so the panel still draws its axes
            fig.add_scatter(x=[span.min(), span.max()], y=[None, None], mode="markers", showlegend=False,
                            hoverinfo="skip", row=r, col=c)
            continue
        data, limits = framed
        _add_p_chart(fig, data, x, limits, threshold, row=r, col=c, legend=not drawn)
        drawn = True
    if not drawn:
        return None
    pad = pd.Timedelta(days=20)
    fig.update_xaxes(range=[span.min() - pad, span.max() + pad], showline=True, linecolor="#999", tickformat="%b %y",
                     nticks=5)
    fig.update_yaxes(tickformat=".0%", range=[0, 1], showline=True, linecolor="#999", gridcolor="#eee",
                     dtick=0.25)
    _themed(fig).update_layout(height=row_height * rows + 80, hovermode="closest",
                               legend=dict(orientation="h", yanchor="bottom", y=1.1, x=0, title=None))
    return fig


def rate_lines(df: pd.DataFrame, x: str, y: str, n: str | None = None, color: str | None = None,
               threshold: int = UNSTABLE_BELOW, title: str | None = None, y_label: str | None = None,
               percent: bool = True, shape: str = "linear", benchmark=None, height: int = 340,
               colours: dict | None = None) -> go.Figure | None:
    """Lines over x, one per `color` group; a hidden value leaves a gap, an unstable one a hollow marker."""
    if df.empty or df[y].notna().sum() == 0:
        return None
    fig = go.Figure()
    groups = [(None, df)] if color is None else list(df.groupby(color, sort=False, dropna=False))
    value = "%{y:.1%}" if percent else "%{y:,.1f}"
    traces = []  # added in one go: one check of each trace instead of two
    for i, (name, g) in enumerate(groups):
        g = g.sort_values(x)
        colour = (colours or {}).get(name) or (PALETTE[i % len(PALETTE)] if color else PALETTE[0])
        nn = g[n] if n else pd.Series(np.nan, index=g.index)
        traces.append(dict(
            type="scatter", x=g[x], y=g[y], name=label(y) if name is None else pretty(name), mode="lines+markers",
            line=dict(color=colour, shape=shape, width=2),
            marker=dict(size=8, color=colour, symbol=marker_symbols(nn, threshold), line=dict(width=2, color=colour)),
            customdata=_num(nn, errors="coerce").to_numpy(dtype=float),
            hovertemplate=(f"{'' if name is None else pretty(name) + '<br>'}{_x_hover(g[x])}: {value}"
                           + ("<br>n = %{customdata:,.0f}" if n else "") + "<extra></extra>"),
        ))
    # where a value is hidden, an x on the axis in the group's colour (one grey key in the legend)
    for i, (name, g) in enumerate(groups):
        hidden = g[g[y].isna()]
        if hidden.empty:
            continue
        colour = (colours or {}).get(name) or (PALETTE[i % len(PALETTE)] if color else PALETTE[0])
        label_of = "" if name is None else pretty(name) + ", "
        traces.append(dict(type="scatter", x=hidden[x], y=np.zeros(len(hidden)), name="hidden (1–10)",
                           mode="markers", legendgroup="hidden", showlegend=False, cliponaxis=False,
                           hovertemplate=f"{label_of}{_x_hover(hidden[x])}: hidden (a count of 1–10)<extra></extra>",
                           marker=dict(symbol="x-thin", size=9, line=dict(width=1.5, color=colour), color=colour,
                                       opacity=0.6)))
    if df[y].isna().any():
        traces.append(dict(type="scatter", x=[None], y=[None], name="hidden (1–10)", mode="markers",
                           legendgroup="hidden",
                           marker=dict(symbol="x-thin", size=9, line=dict(width=1.5, color="#888"), color="#888")))
    fig.add_traces(traces)
    add_benchmark(fig, benchmark)
    _finish(fig, title, height, percent, y_label)
    if percent:
        _fit_rate_axis(fig, benchmark)
    return fig


CURVE_NOTE = ("Days are merged into one step until it holds no event or 11 or more, so that a small daily count "
              "cannot be read from the curve; markers sit on the days shown.")


def curves(df: pd.DataFrame, x: str, y: str, n: str, color: str | None = None, threshold: int = UNSTABLE_BELOW,
           marks: tuple = (), title: str | None = None, y_label: str | None = None, x_label: str = "Days",
           height: int = 380, hover_word: str = "") -> go.Figure | None:
    """Step curves (Kaplan-Meier style) by group: solid while n >= threshold, dotted after; values at `marks`.

    Days whose value is hidden are left out, so the curve steps straight from one shown day to the next.
    """
    if df.empty or df[y].notna().sum() == 0:
        return None
    fig = go.Figure()
    groups = [(label(y), df)] if color is None else list(df.groupby(color, sort=False, dropna=False))
    for i, (name, g) in enumerate(groups):
        # a hidden day is skipped: the step from the last shown day runs on to the next shown one
        g = g[g[y].notna()].sort_values(x).reset_index(drop=True)
        colour = PALETTE[i % len(PALETTE)]
        name = pretty(name)
        nn = _num(g[n], errors="coerce")
        low = nn.lt(threshold) & nn.notna()
        cut = int(low.to_numpy().argmax()) if low.any() else len(g)
        custom = nn.to_numpy(dtype=float)
        hover = f"{name}<br>{x_label} %{{x}}: %{{y:.1%}}{hover_word}<br>n = %{{customdata:,.0f}}<extra></extra>"
        solid, dotted = g.iloc[:cut], g.iloc[max(cut - 1, 0):]
        if cut > 0:
            fig.add_scatter(x=solid[x], y=solid[y], name=str(name), mode="lines" if len(g) > 1 else "markers",
                            legendgroup=str(name), marker=dict(color=colour),
                            line=dict(color=colour, shape="hv", width=2.5), customdata=custom[:cut],
                            hovertemplate=hover)
        if cut < len(g):
            fig.add_scatter(x=dotted[x], y=dotted[y], name=str(name) if cut == 0 else f"{name} (n < {threshold})",
                            mode="lines" if len(g) > 1 else "markers", marker=dict(color=colour, symbol="circle-open"),
                            legendgroup=str(name), showlegend=cut == 0,
                            line=dict(color=colour, shape="hv", width=1.5, dash="dot"),
                            customdata=custom[max(cut - 1, 0):], hovertemplate=hover)
        at = g[g[x].isin(marks) & g[y].notna()]
        if len(at):
            fig.add_scatter(x=at[x], y=at[y], mode="markers", legendgroup=str(name), showlegend=False,
                            marker=dict(size=9, color=colour, symbol=marker_symbols(at[n], threshold),
                                        line=dict(width=2, color=colour)),
                            customdata=_num(at[n], errors="coerce").to_numpy(dtype=float),
                            hovertemplate=hover, name=str(name))
    for m in marks:
        fig.add_vline(x=m, line=dict(color="#ccc", dash="dot", width=1))
    _finish(fig, title, height, True, y_label)
    top = int(_num(df[x]).max())
    step = 30 if top > 60 else 7
    ticks = sorted({0, *marks} | {t for t in range(0, top + 1, step) if all(abs(t - m) > step / 3 for m in marks)})
    fig.update_xaxes(title_text=x_label, tickvals=ticks)
    return fig


def values_at(df: pd.DataFrame, x: str, y: str, by: str, points: tuple) -> pd.DataFrame:
    """A small table of `y` at the given x values, one row per `by` group (hidden values stay missing)."""
    picked = df[df[x].isin(points)]
    table = picked.pivot_table(index=by, columns=x, values=y, aggfunc="first", dropna=False, sort=False)
    table = table.reindex(columns=list(points))
    table.columns = [f"day {p}" for p in points]
    return table.reset_index()


def funnel(df: pd.DataFrame, stages: dict[str, str], group: str, rates: dict[str, str] | None = None,
           title: str | None = None, height: int = 320) -> go.Figure | None:
    """A funnel per group (site): counts at each stage, with the query's own rate in brackets when shown."""
    if df.empty or df[list(stages)].notna().sum().sum() == 0:
        return None
    fig = go.Figure()
    for i, (_, row) in enumerate(df.iterrows()):
        counts = [row[c] for c in stages]
        text = []
        for c in stages:
            v = row[c]
            r = row.get((rates or {}).get(c)) if rates and c in rates else None
            t = "hidden (1–10)" if pd.isna(v) else f"{int(v):,}"
            text.append(t + (f" ({r:.0%} of referred)" if r is not None and pd.notna(r) else ""))
        fig.add_trace(go.Funnel(name=str(row[group]), y=list(stages.values()),
                                x=[None if pd.isna(v) else float(v) for v in counts], customdata=text,
                                text=[t.split(" (")[0] for t in text], textinfo="text", textposition="inside",
                                insidetextanchor="middle", textfont=dict(size=12),
                                marker=dict(color=PALETTE[i % len(PALETTE)]),
                                hovertemplate=f"{row[group]}<br>%{{y}}: %{{customdata}}<extra></extra>"))
    return _finish(fig, title, height, percent=False)


def rate_bars(df: pd.DataFrame, x: str, ys: dict[str, str], n: str | None = None,
              threshold: int = UNSTABLE_BELOW, title: str | None = None, benchmark=None, height: int = 340,
              x_labels: dict | None = None) -> go.Figure | None:
    """Grouped bars of one or more rates by x; unstable bars hatched, hidden ones missing."""
    if df.empty or df[list(ys)].notna().sum().sum() == 0:
        return None
    fig = go.Figure()
    xs = [(x_labels or {}).get(v, pretty(v)) for v in df[x]]
    nn = _num(df[n], errors="coerce") if n else pd.Series(np.nan, index=df.index)
    unstable = (nn < threshold).to_numpy()
    for i, (col, name) in enumerate(ys.items()):
        vals = _num(df[col], errors="coerce")
        fig.add_bar(x=xs, y=vals, name=name, marker=dict(color=PALETTE[i % len(PALETTE)],
                    pattern=dict(shape=["/" if u else "" for u in unstable], fillmode="overlay", solidity=0.4)),
                    text=[("" if pd.isna(v) else (f"({v:.0%})" if u else f"{v:.0%}")) for v, u in zip(vals, unstable)],
                    textposition="outside", cliponaxis=False,
                    customdata=nn.to_numpy(dtype=float),
                    hovertemplate=f"%{{x}}<br>{name}: %{{y:.1%}}" + ("<br>n = %{customdata:,.0f}" if n else "")
                                  + "<extra></extra>")
    fig.update_layout(barmode="group", bargap=0.3)
    add_benchmark(fig, benchmark)
    _finish(fig, title, height, True)
    _fit_rate_axis(fig, benchmark)
    return fig


def median_bars(df: pd.DataFrame, x: str, y: str, low: str, high: str, n: str, title: str | None = None,
                height: int = 320, x_labels: dict | None = None, unit: str = "days") -> go.Figure | None:
    """Medians as bars with the quartiles as whiskers (hidden stats are missing)."""
    if df.empty or df[y].notna().sum() == 0:
        return None
    med, lo, hi = (_num(df[c], errors="coerce") for c in (y, low, high))
    nn = _num(df[n], errors="coerce")
    xs = [f"{(x_labels or {}).get(v, pretty(v))}<br><b>{'hidden' if pd.isna(m) else f'{m:,.0f}'}</b>"
          for v, m in zip(df[x], med)]
    fig = go.Figure(go.Bar(
        x=xs, y=med, marker=dict(color=[level_colour(v) for v in df[x]]), width=0.6,
        error_y=dict(type="data", symmetric=False, array=(hi - med).to_numpy(dtype=float),
                     arrayminus=(med - lo).to_numpy(dtype=float), color="#555", thickness=1.2),
        customdata=np.column_stack([lo.to_numpy(dtype=float), hi.to_numpy(dtype=float), nn.to_numpy(dtype=float)]),
        hovertemplate=f"%{{x}}<br>median %{{y:,.1f}} {unit} (quartiles %{{customdata[0]:,.1f}}–%{{customdata[1]:,.1f}})"
                      "<br>n = %{customdata[2]:,.0f}<extra></extra>",
        showlegend=False))
    fig = _finish(fig, title, height, percent=False, y_title=unit.capitalize())
    fig.update_xaxes(tickangle=0)
    return fig


def rate_heatmap(df: pd.DataFrame, x: str, y: str, z: str, n: str, threshold: int = UNSTABLE_BELOW,
                 title: str | None = None, x_label: str | None = None, y_label: str | None = None,
                 height: int | None = None) -> go.Figure | None:
    """Rates on a grid (e.g. admission month by week): hidden cells blank, unstable ones in brackets."""
    if df.empty or df[z].notna().sum() == 0:
        return None
    cells = df.groupby([y, x])  # one grid of rows y by columns x, both in order, for the values, n and presence
    values = cells[z].first().unstack()
    counts = cells[n].first().astype("float64").unstack().reindex_like(values)
    rows = [_tick(i) for i in values.index]
    present = cells.size().unstack().reindex_like(values)
    text = [[("hidden" if pd.notna(r) else "") if pd.isna(v) else (f"({v:.0%})" if pd.notna(c) and c < threshold
                                                                   else f"{v:.0%}")
             for v, c, r in zip(vr, cr, rr)]
            for vr, cr, rr in zip(values.to_numpy(), counts.to_numpy(), present.to_numpy())]
    fig = go.Figure(go.Heatmap(
        z=values.to_numpy(dtype=float), x=[_tick(c) for c in values.columns], y=rows, text=text,
        texttemplate="%{text}", textfont=dict(size=11), colorscale="Viridis", zmin=0, zmax=1,
        hovertext=text,
        colorbar=dict(tickformat=".0%", thickness=12), customdata=counts.to_numpy(dtype=float),
        hovertemplate=f"{y_label or label(y)} %{{y}}, {x_label or label(x)} %{{x}}: %{{z:.1%}}"
                      "<br>n = %{customdata:,.0f}<extra></extra>", hoverongaps=False, xgap=1, ygap=1))
    _themed(fig).update_layout(title=dict(text=title) if title else None,
                               height=height or max(260, 26 * len(rows) + 110))
    fig.update_xaxes(title_text=x_label or label(x), showgrid=False, type="category")
    fig.update_yaxes(title_text=None, autorange="reversed", showgrid=False, type="category")
    return fig


def facet_rates(df: pd.DataFrame, x: str, measures: dict[str, str], facet: str, color: str, n: str,
                threshold: int = UNSTABLE_BELOW, height: int = 440) -> go.Figure | None:
    """Rows of measures by columns of `facet` values, one line per `color` group in each panel."""
    from plotly.subplots import make_subplots

    if df.empty or df[list(measures)].notna().sum().sum() == 0:
        return None
    facets = list(dict.fromkeys(df[facet]))
    groups = list(dict.fromkeys(df[color]))
    fig = make_subplots(rows=len(measures), cols=len(facets), shared_xaxes=True, shared_yaxes=True,
                        column_titles=[pretty(f) for f in facets], row_titles=list(measures.values()),
                        horizontal_spacing=0.035, vertical_spacing=0.08)
    parts = {key: part.sort_values(x) for key, part in df.groupby([facet, color], sort=False)}
    traces, rows, cols = [], [], []  # added in one go: one check of each trace instead of two
    for r, (col, name) in enumerate(measures.items(), start=1):
        for c, f in enumerate(facets, start=1):
            if df.loc[df[facet] == f, col].notna().sum() == 0:
                k = (r - 1) * len(facets) + c
                xd, yd = fig.layout[f"xaxis{k if k > 1 else ''}"].domain, fig.layout[f"yaxis{k if k > 1 else ''}"].domain
                fig.add_annotation(text="all hidden<br>(1–10)", showarrow=False, xref="paper", yref="paper",
                                   x=(xd[0] + xd[1]) / 2, y=(yd[0] + yd[1]) / 2, font=dict(color="#777", size=11))
            for i, g in enumerate(groups):
                part = parts.get((f, g))
                if part is None:
                    continue
                colour = PALETTE[i % len(PALETTE)]
                traces.append(dict(type="scatter", x=part[x], y=part[col], name=pretty(g), legendgroup=str(g),
                                   showlegend=(r == 1 and c == 1), mode="lines+markers",
                                   line=dict(color=colour, width=1.5),
                                   marker=dict(size=5, color=colour, symbol=marker_symbols(part[n], threshold),
                                               line=dict(width=1.5, color=colour)),
                                   customdata=_num(part[n], errors="coerce").to_numpy(dtype=float),
                                   hovertemplate=f"{g}, {f}<br>%{{x|%d %b %Y}}: {name} %{{y:.1%}}"
                                                 "<br>n = %{customdata:,.0f}<extra></extra>"))
                rows.append(r)
                cols.append(c)
    if traces:
        fig.add_traces(traces, rows=rows, cols=cols)
    _themed(fig).update_layout(height=height, hovermode="closest",
                               legend=dict(orientation="h", yanchor="bottom", y=1.06, x=0, title=None))
    xs = pd.to_datetime(df[x])
    fig.update_xaxes(tickformat="%b", nticks=3, range=[xs.min() - pd.Timedelta(days=4), xs.max() + pd.Timedelta(days=4)])
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", range=[0, 1])
    return fig


def table_figure(df: pd.DataFrame, title: str | None = None) -> go.Figure:
    """A plain table as a figure, for static exports (e.g. the Overview tiles in the page PDF)."""
    fig = go.Figure(go.Table(
        header=dict(values=[f"<b>{c}</b>" for c in df.columns], fill_color="#f0f0f0", align="left",
                    font=dict(size=14)),
        cells=dict(values=[df[c].astype(str).tolist() for c in df.columns], align="left", height=30,
                   font=dict(size=14))))
    _themed(fig).update_layout(title=dict(text=title) if title else None,
                               height=90 + 32 * (len(df) + 1))
    return fig


SIGNAL_COLOUR = "#D55E00"


def mark_signals(fig: go.Figure, signals, rows: pd.DataFrame, x: str = "month") -> go.Figure:
    """Draw signals (outcomes.signals.Signal) on a p-chart built from `rows` (x, events, n): a run on one side of
    the centre line as a broad band behind its points, the span of too few crossings shaded, and each point
    outside the limits ringed (the p-chart already marks it; the ring says it counts as a signal)."""
    xs = pd.to_datetime(rows[x]).dt.date
    p = pd.Series((_num(rows["events"]) / _num(rows["n"])).to_numpy(), index=xs)
    traces = []
    for s in signals:
        at = [m for m in s.months if m in p.index and pd.notna(p[m])]
        if s.rule == "few_crossings":
            fig.add_vrect(x0=pd.Timestamp(s.start_month) - pd.Timedelta(days=12),
                          x1=pd.Timestamp(s.end_month) + pd.Timedelta(days=12),
                          fillcolor=_alpha(SIGNAL_COLOUR, 0.06), line_width=0, layer="below")
            continue
        if not at:
            continue
        ys = [float(p[m]) for m in at]
        if s.rule == "long_run":
            traces.append(dict(type="scatter", x=[pd.Timestamp(m) for m in at], y=ys, mode="lines+markers",
                               name="signal: long run", legendgroup="signal-run",
                               showlegend=not any(t["name"] == "signal: long run" for t in traces),
                               hoverinfo="skip", line=dict(color=_alpha(SIGNAL_COLOUR, 0.35), width=12),
                               marker=dict(size=16, color=_alpha(SIGNAL_COLOUR, 0.35))))
        else:
            traces.append(dict(type="scatter", x=[pd.Timestamp(m) for m in at], y=ys, mode="markers",
                               name="signal: outside limits", legendgroup="signal-point",
                               showlegend=not any(t["name"] == "signal: outside limits" for t in traces),
                               hoverinfo="skip",
                               marker=dict(size=20, color="rgba(0,0,0,0)", line=dict(width=2.5, color=SIGNAL_COLOUR))))
    if traces:
        # behind the rate line: the band first, then everything already drawn
        fig.add_traces(traces)
        fig.data = fig.data[-len(traces):] + fig.data[:-len(traces)]
    return fig
