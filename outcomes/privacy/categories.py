"""Collapse before hiding: small categories of a breakdown merge into "Other" before any cell is hidden.

A query names the columns whose values may merge (`suppress: other: [column, ...]`). For each in turn, a value
is small when more than a fifth of its rows hide a drawn rate; when two or more values are small (or one is and
the column already has an "other" value) and some value is not, they become one "Other" row per remaining key, with counts summed and
rates recomputed, if that shows a larger share of the view's rate cells than hiding them would.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from outcomes.privacy.coverage import shown_share, view_rows

OTHER = "Other"
SMALL_SHARE = 0.2  # a value with more of its rows hiding a rate than this is small


def merge(
    df: pd.DataFrame,
    spec: dict,
    suppress: Callable[[pd.DataFrame], tuple],
    rates: list[str],
    where: dict | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """(raw table with small categories merged, notes saying which); `suppress(df)` gives (data, mask, ...)."""
    notes = []
    for column in spec.get("other") or []:
        if column not in df or df.empty:
            continue
        data, mask = suppress(df)[:2]
        drawn = [c for c in rates if c in mask]
        if not drawn:
            continue
        keep = view_rows(data, where)
        hides = mask.loc[keep, drawn].any(axis=1).groupby(df.loc[keep, column]).mean()
        small = sorted(hides[hides > SMALL_SHARE].index, key=lambda v: (_size(df, spec, column, v), str(v)))
        existing = [v for v in df[column].unique() if str(v).lower() == OTHER.lower()]
        gone = set(small) | set(existing)
        if (len(small) < 2 and not (small and existing)) or not set(df[column].unique()) - gone:
            continue  # one small value alone gains nothing from a new name; merging every value hides the breakdown
        merged = _merge(df, spec, column, gone)
        before = shown_share(data, mask, spec, where, drawn)
        after = shown_share(*suppress(merged)[:2], spec, where, drawn)
        if after > before:
            df = merged
            notes.append(f"{OTHER} ({column.replace('_', ' ')}): {', '.join(map(str, small))}, too few to show apart")
    return df, notes


def _size(df: pd.DataFrame, spec: dict, column: str, value) -> float:
    dens = list(dict.fromkeys(d for _, d in (spec.get("rates") or {}).values() if d in df))
    rows = df[df[column] == value]
    return float(pd.to_numeric(rows[dens[0]], errors="coerce").sum()) if dens else float(len(rows))


def _merge(df: pd.DataFrame, spec: dict, column: str, values: set) -> pd.DataFrame:
    """The table with `values` of `column` relabelled OTHER and their rows summed with the same other keys."""
    rates = spec.get("rates") or {}
    counts = [c for c in spec.get("counts", []) if c in df]
    out = df.copy()
    out[column] = out[column].astype(object).where(~out[column].isin(values), OTHER)
    names = {str(v) for v in values}
    keys = [c for c in df.columns if c not in counts and c not in rates]
    for c in keys:
        if c != column and out[c].dtype == object:  # a label made of keys ("day, family") follows its parts
            out[c] = out[c].map(lambda s: _relabel(s, names))
    summed = out.groupby(keys, dropna=False, sort=False, as_index=False)[counts].sum()
    for col, (num, den) in rates.items():
        if col in df:
            with np.errstate(divide="ignore", invalid="ignore"):
                summed[col] = summed[num] / summed[den].where(summed[den] != 0)
    order = {v: i for i, v in enumerate(dict.fromkeys(df[column].where(~df[column].isin(values), OTHER)))}
    summed = summed.sort_values(
        [c for c in keys if c != column] + [column], key=lambda s: s.map(order) if s.name == column else s
    )
    return summed[list(df.columns)].reset_index(drop=True)


def _relabel(text, names: set):
    if not isinstance(text, str):
        return text
    return ", ".join(OTHER if part in names else part for part in text.split(", "))
