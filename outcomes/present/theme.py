"""The look every chart shares: the colour-blind-safe palette, the Plotly template, labels, markers for unstable rates."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from outcomes.measures.stats import UNSTABLE_BELOW
from outcomes.present import labels

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
# The Okabe-Ito colours with at least 3:1 against the white plot (WCAG 1.4.11), for lines and markers; orange,
# sky blue and yellow (1.3 to 2.3:1) are left for fills that carry no meaning of their own.
SERIES_COLOURS = [PALETTE[i] for i in (0, 5, 2, 3, 7)]


RATE_WORDS = ("rate", "share", "retained", "ci_low", "ci_high")


pio.templates["outcomes"] = go.layout.Template(
    layout=dict(
        font=dict(family="Source Sans Pro, Arial, sans-serif", size=13),
        colorway=SERIES_COLOURS,
        plot_bgcolor="white",
        paper_bgcolor="white",
        margin=dict(l=10, r=10, t=40, b=10),
        xaxis=dict(showgrid=False, linecolor="#767676"),
        yaxis=dict(gridcolor="#eee", zeroline=False),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        hoverlabel=dict(font_size=13),
        modebar=dict(color="#595959", activecolor="#0B5CAD"),  # its buttons at 3:1 or more (7:1 and 6.7:1)
    )
)


TEMPLATE = "simple_white+outcomes"


_THEME = pio.templates[TEMPLATE]  # the two merged once: merging and checking them took most of a figure's build


def themed(fig: go.Figure) -> go.Figure:
    """`fig` with the TEMPLATE theme: what update_layout(template=TEMPLATE) gives, from the template merged and
    checked once (as plotly itself sets its default template on every new figure)."""
    layout = fig.layout
    validate, layout._validate = layout._validate, False
    try:
        layout.template = _THEME  # stored as a copy of its properties
    finally:
        layout._validate = validate
    return fig


_THEME_DICT = go.Layout(template=_THEME).to_plotly_json()["template"]  # as a figure's layout holds it


def figure_of(data: list[dict], layout: dict) -> go.Figure:
    """A figure in the TEMPLATE theme from its traces and layout as plain dicts, made in one step without
    checking each property on the way: Plotly's checks and updates took most of a chart's build on every
    rerun. tests/test_figures.py makes every catalog chart again with the checks on."""
    layout = {k: v for k, v in layout.items() if v or k not in ("shapes", "annotations")}  # none: not there at all
    # a placeholder template, so that Plotly does not copy in its default one, then the theme's, shared and not
    # copied (copying a template was most of this): nothing changes a figure's template once it is set, and
    # to_dict copies what it hands out
    fig = go.Figure(data=data, layout=layout | {"template": {"layout": {}}}, _validate=False)
    fig._layout["template"] = _THEME_DICT
    return fig


def grid_layout(rows: int, cols: int, **options) -> dict:
    """The layout make_subplots gives a grid of panels with these options (titles as tuples), without its
    template: a copy of one made once per shape, titles and spacing."""
    return copy.deepcopy(_grid_layout(rows, cols, **options))


@functools.lru_cache(maxsize=64)
def _grid_layout(rows: int, cols: int, **options) -> dict:
    from plotly.subplots import make_subplots

    listed = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    layout = make_subplots(rows=rows, cols=cols, **listed).layout.to_plotly_json()
    layout.pop("template", None)
    layout.setdefault("annotations", [])
    return layout


def label(column: str) -> str:
    """A column name as a heading (outcomes.present.labels.column)."""
    return labels.column(column)


def is_rate(column: str) -> bool:
    return any(w in column for w in RATE_WORDS)


LEVEL_COLOURS = {
    "withdrawal_management": PALETTE[3],
    "residential": PALETTE[0],
    "php": PALETTE[7],
    "iop": PALETTE[5],
    "op": PALETTE[2],
}


LEVEL_TICKS = {
    "withdrawal_management": "Withdrawal<br>mgmt",
    "residential": "Residential",
    "php": "PHP",
    "iop": "IOP",
    "op": "OP",
}


BENCHMARK_COLOUR = "#117733"


def pretty(value) -> str:
    """A category as people read it (outcomes.present.labels.value): "self_pay" -> "Self-pay", "iop" -> "IOP"."""
    return labels.value(value)


def alpha(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def tick(value) -> str:
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "strftime"):
        return f"{pd.Timestamp(value):%b %Y}"
    return str(value)


def series_colour(i: int) -> str:
    """The colour of a chart's i-th line or marker series."""
    return SERIES_COLOURS[i % len(SERIES_COLOURS)]


def num(values, errors: str = "coerce") -> pd.Series:
    """Numbers as float64 with NaN for missing (nullable Int64 with <NA> would make comparisons ambiguous)."""
    return pd.to_numeric(pd.Series(values), errors=errors).astype("float64")


def level_colour(level: str) -> str:
    return LEVEL_COLOURS.get(level, "#767676")


def marker_symbols(n, threshold: int = UNSTABLE_BELOW, base: str = "circle") -> list[str]:
    """Open markers where n is under `threshold` (an unstable rate), filled ones elsewhere."""
    values = num(pd.Series(n), errors="coerce")
    return [f"{base}-open" if pd.notna(v) and v < threshold else base for v in values]


def x_hover(xs) -> str:
    return "%{x|%b %Y}" if pd.api.types.is_datetime64_any_dtype(pd.Series(xs)) else "%{x}"


def finish(
    fig: go.Figure, title: str | None = None, height: int = 360, percent: bool = True, y_title: str | None = None
) -> go.Figure:
    """The shared title, height, legend and y axis (finished_layout), in one layout update of every y axis."""
    layout = finished_layout(title, height, percent, y_title)
    layout["title"] = layout["title"] or None  # as before: an unset title, not an empty one
    layout["legend"]["title"] = None
    y_axis = layout.pop("yaxis", None)
    axes = [k for k in fig._layout if k.startswith("yaxis")] or ["yaxis"]  # as update_yaxes: every y axis
    themed(fig).update_layout(**layout, **({axis: y_axis for axis in axes} if y_axis else {}))
    return fig


def finished_layout(
    title: str | None = None, height: int = 360, percent: bool = True, y_title: str | None = None
) -> dict:
    """The layout most charts share, as a dict: title, height, the legend above the plot, a percent y axis."""
    y_axis = {}
    if percent:
        y_axis |= dict(tickformat=".0%", rangemode="tozero")
    if y_title:
        y_axis |= dict(title=dict(text=y_title))
    layout = dict(
        title=dict(text=title) if title else {},
        height=height,
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, title={}),
    )
    return layout | (dict(yaxis=y_axis) if y_axis else {})


def merged(*layouts: dict) -> dict:
    """Layout dicts merged as Plotly's update merges them: nested dicts key by key, anything else replaced."""
    out: dict = {}
    for layout in layouts:
        for k, v in layout.items():
            out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def vline(x, line: dict, text: str | None = None, font: dict | None = None) -> tuple[dict, list[dict]]:
    """The shape and label add_vline(annotation_position="top") draws on a one-axis figure, as dicts for its
    layout (add_vline works out every subplot each line could span: a third of a small chart's build)."""
    shape = dict(type="line", x0=x, x1=x, xref="x", y0=0, y1=1, yref="y domain", line=line)
    label = dict(text=text, x=x, xref="x", xanchor="center", y=1, yref="y domain", yanchor="bottom")
    return shape, [label | dict(showarrow=False, font=font or {})] if text else []


def hline(y, line: dict, text: str | None = None, font: dict | None = None) -> tuple[dict, list[dict]]:
    """The shape and label add_hline(annotation_position="top right") draws on a one-axis figure (see vline)."""
    shape = dict(type="line", x0=0, x1=1, xref="x domain", y0=y, y1=y, yref="y", line=line)
    label = dict(text=text, x=1, xref="x domain", xanchor="right", y=y, yref="y", yanchor="bottom")
    return shape, [label | dict(showarrow=False, font=font or {})] if text else []


def benchmark_marks(benchmark) -> tuple[list[dict], list[dict]]:
    """The shapes and labels of a dashed reference line; `benchmark` is a Benchmark, a (value, label) pair or
    None (no marks)."""
    if not benchmark:
        return [], []
    value, text = (benchmark.value, benchmark.label) if hasattr(benchmark, "value") else benchmark
    shape, label = hline(
        value, dict(color=BENCHMARK_COLOUR, dash="dash", width=1.5), text, dict(color=BENCHMARK_COLOUR, size=12)
    )
    return [shape], label


def rate_range(traces, benchmark=None) -> list[float]:
    """A rate axis from 0 to a little above the highest value of `traces` (dicts) and the
    benchmark, so that a reference line outside the data does not fall off the chart; at least 0 to 10%, so
    an all-zero series still reads as a rate axis."""
    top = 0.0
    for trace in traces:
        ys = trace.get("y")
        y = num(pd.Series(ys if ys is not None else []), errors="coerce")
        if len(y.dropna()):
            top = max(top, float(y.max()))
    if benchmark:
        top = max(top, benchmark.value if hasattr(benchmark, "value") else benchmark[0])
    return [0, max(min(1.0, top * 1.12) if top <= 1 else top * 1.12, 0.1)]


def unstable_count(df: pd.DataFrame, n: str | None, threshold: int = UNSTABLE_BELOW) -> int:
    if not n or n not in df:
        return 0
    v = num(df[n], errors="coerce")
    return int(((v > 0) & (v < threshold)).sum())
