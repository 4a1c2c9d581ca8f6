"""Plotly figures on a page: the chart toolbar every chart gets, and each figure's JSON made once."""

from __future__ import annotations

import copy

import plotly.graph_objects as go
import streamlit as st
from _plotly_utils.utils import convert_to_base64
from plotly.basedatatypes import BaseFigure

CHART_CONFIG = {
    "displaylogo": False,
    "displayModeBar": "hover",
    "modeBarButtonsToRemove": ["zoom2d", "pan2d", "select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"],
}


class _Made(BaseFigure):
    """A figure's dict, made once and handed to st.plotly_chart, which asks a figure for to_dict(): a deep copy
    with every array encoded, repeated on every rerun that shows the same figure."""

    def __init__(self, spec: dict):  # BaseFigure's own set-up builds the figure again: not wanted here
        object.__setattr__(self, "_spec", spec)

    def to_dict(self) -> dict:
        return self._spec


def made(fig: go.Figure) -> _Made:
    """`fig` as st.plotly_chart takes it, its dict made on first use and kept on the figure (figures are not
    changed once built; see web.reuse)."""
    spec = fig.__dict__.get("_made")
    if spec is None:
        spec = _spec(fig)
        object.__setattr__(fig, "_made", spec)
    return _Made(spec)


def _spec(fig: go.Figure) -> dict:
    """What fig.to_dict() gives, with the figure's template shared rather than copied (copying it was most of
    the work): the spec is only read, to be sent to the browser."""
    layout = {k: v for k, v in fig._layout.items() if k != "template"}
    spec = {"data": copy.deepcopy(fig._data), "layout": copy.deepcopy(layout)}
    convert_to_base64(spec)  # as to_dict: number arrays sent as typed arrays
    if "template" in fig._layout:
        spec["layout"]["template"] = fig._layout["template"]
    return spec


def plot(fig: go.Figure, key: str, alt: str | None = None) -> None:
    """Draw `fig` full width, in the project's template (theme None: its tick labels and titles are 14.9:1,
    Streamlit's 3.8:1), with the trimmed toolbar and `alt` as its accessible name."""
    st.plotly_chart(made(fig), width="stretch", key=key, config=CHART_CONFIG, alt=alt, theme=None)
