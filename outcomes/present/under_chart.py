"""The lines printed under a chart by what was drawn on it (signals, program events), carried on the figure
itself in `layout.meta`, so the page, its PDF and the digest print the same lines as the figure travels."""

from __future__ import annotations

import plotly.graph_objects as go

KINDS = ("signals", "events")  # in the order they are printed


def add(fig: go.Figure, kind: str, lines: list[str]) -> None:
    """Record lines of one kind under the figure (after any already recorded)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if not lines:
        return
    meta = dict(fig.layout.meta) if isinstance(fig.layout.meta, dict) else {}
    meta[kind] = [*meta.get(kind, []), *lines]
    fig.layout.meta = meta


def recorded(kind: str, lines: list[str]) -> dict:
    """The layout that records lines of one kind under a figure not made yet (as `add` on a new figure)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    return dict(meta={kind: list(lines)}) if lines else {}


def lines(fig: go.Figure | None, kind: str | None = None) -> list[str]:
    """The recorded lines, of one kind or of every kind in order."""
    meta = fig.layout.meta if fig is not None and isinstance(fig.layout.meta, dict) else {}
    return [line for k in ([kind] if kind else KINDS) for line in meta.get(k, [])]


def text(fig: go.Figure | None) -> str:
    """Every recorded line, one a line: the note under the chart."""
    return "\n".join(lines(fig))
