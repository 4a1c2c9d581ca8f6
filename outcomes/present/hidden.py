"""Hidden values on charts: a visible placeholder where a value is hidden (never a blank, never a point on
zero), what it says on hover, and the one legend line under a chart that hides anything. The words are the
ones tables and files use (outcomes.privacy.suppress: "1–10", "too few", "hidden")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from outcomes.privacy import suppress as sup

COLOUR = "#6b6b6b"  # placeholders: grey, hollow, so they never read as a value of the series
FILL = "#e4e4e4"
SYMBOL = "square-open"
LEGEND = "hidden value"


def reason_of(reasons: pd.DataFrame | None, index, columns) -> list[str]:
    """For each row label in `index`, why its value is hidden: SMALL when any of `columns` is hidden as small,
    else COMPLEMENT (also when no reasons came with the rows: "hidden" never calls a large value small)."""
    cols = [c for c in columns if reasons is not None and c in reasons.columns]
    if not cols:
        return [sup.COMPLEMENT] * len(index)
    why = reasons.reindex(index=index, columns=cols, fill_value="")
    small = (why == sup.SMALL).to_numpy().any(axis=1)
    return [sup.SMALL if s else sup.COMPLEMENT for s in small]


def words(reason: str, count: bool = False) -> str:
    """Hover text for a hidden value: a count "1–10 (too few to show)", a rate "too few (from a count of 1–10)",
    a value hidden to protect another "hidden (so that a small number cannot be worked out)"."""
    if reason == sup.SMALL:
        return f"{sup.SMALL_LABEL} (too few to show)" if count else f"{sup.FEW_LABEL} (from a count of 1–10)"
    return f"{sup.COMPLEMENT_LABEL} (so that a small number cannot be worked out)"


def tag(reason: str, count: bool = False) -> str:
    """The short label: "1–10", "too few" or "hidden"."""
    if reason == sup.SMALL:
        return sup.SMALL_LABEL if count else sup.FEW_LABEL
    return sup.COMPLEMENT_LABEL


def heights(values, fallback: float) -> np.ndarray:
    """Where each hidden value's placeholder sits: at the nearest shown non-zero value before it in the series
    (after it, when none is before), else at `fallback`; never on zero, so it cannot read as a zero."""
    v = pd.Series(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float))
    usable = v.where(v > 0)
    out = usable.ffill().fillna(usable.bfill()).fillna(fallback)
    return out.to_numpy(dtype=float)


def fallback_height(values, percent: bool = True) -> float:
    """The height for a placeholder with no shown non-zero value beside it: half the highest shown value, or
    5% (half of the smallest rate axis) when nothing above zero is shown."""
    v = pd.to_numeric(pd.Series(values), errors="coerce")
    top = float(v.max()) if v.notna().any() else 0.0
    if top > 0:
        return top / 2
    return 0.05 if percent else 1.0


def marker(x, y, texts: list[str], showlegend: bool = True, prefix: str = "", x_format: str = "%{x}") -> dict:
    """A hollow grey square at each hidden x, its hover saying why it is hidden."""
    return dict(
        type="scatter",
        x=list(x),
        y=list(y),
        name=LEGEND,
        mode="markers",
        legendgroup="hidden",
        showlegend=showlegend,
        cliponaxis=False,
        text=[f"{prefix}{t}" for t in texts],
        hovertemplate=x_format + ": %{text}<extra></extra>",
        marker=dict(symbol=SYMBOL, size=10, color=COLOUR, line=dict(width=1.5, color=COLOUR)),
    )


def panel_note(x_domain, y_domain) -> dict:
    """The note in the middle of a panel of small multiples whose every value is hidden (an annotation)."""
    return dict(
        text="every value hidden<br>(1–10, or hidden to protect one)",
        showarrow=False,
        xref="paper",
        yref="paper",
        x=(x_domain[0] + x_domain[1]) / 2,
        y=(y_domain[0] + y_domain[1]) / 2,
        font=dict(color="#595959", size=11),  # 7:1 on white
    )


def legend_line(reasons: pd.DataFrame | None, spec: dict, columns=None) -> str:
    """The line under a chart or table that hides anything, for the labels it uses ("" when nothing is
    hidden): suppress.legend over `columns` (all when None)."""
    if reasons is None or reasons.empty:
        return ""
    cols = [c for c in (columns or reasons.columns) if c in reasons.columns]
    return sup.legend(reasons[cols], spec) if cols else ""
