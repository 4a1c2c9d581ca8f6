"""How much of a suppressed view can be read: the share of its rate cells shown."""

from __future__ import annotations

import pandas as pd


def view_rows(df: pd.DataFrame, where: dict | None) -> pd.Series:
    """Which rows a panel draws: those whose columns hold the values of `where` (a header's `panel: rows:`)."""
    keep = pd.Series(True, index=df.index)
    for col, value in (where or {}).items():
        if col in df:
            keep &= df[col].isin(value if isinstance(value, (list, tuple, set)) else [value])
    return keep


def shown_share(
    data: pd.DataFrame, mask: pd.DataFrame, spec: dict, where: dict | None = None, rates: list[str] | None = None
) -> float:
    """Of the rate cells of a suppressed result (the `rates` columns, by default every rate declared in `spec`;
    the rows picked by `where`) that hold a value, the share shown; a hidden cell counts as holding one. 1.0
    when there are none."""
    rates = [c for c in (rates or spec.get("rates") or {}) if c in data]
    keep = view_rows(data, where).to_numpy()
    if not rates or not keep.any():
        return 1.0
    hidden = mask.loc[keep, rates].to_numpy(dtype=bool)
    shown = data.loc[keep, rates].notna().to_numpy() & ~hidden
    cells = int((shown | hidden).sum())
    return float(shown.sum()) / cells if cells else 1.0
