"""Small-cell suppression: the one place that decides what may be shown or exported."""

from __future__ import annotations

import numpy as np
import pandas as pd

LOW, HIGH = 1, 10  # counts from 1 to 10 are hidden; zero is shown
SCREEN_MARK = "<11"


class UnclassifiedColumn(Exception):
    """A numeric result column has no suppression role, so it cannot be shown safely."""


def _small(values: pd.Series) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce")
    return (v >= LOW) & (v <= HIGH)


def roles(df: pd.DataFrame, spec: dict) -> dict[str, str]:
    """Each column's role: key, count, rate or stat. Numeric columns must be declared in `spec`."""
    out = {}
    declared = {c: "count" for c in spec.get("counts", [])}
    declared |= {c: "rate" for c in (spec.get("rates") or {})}
    declared |= {c: "stat" for c in (spec.get("stats") or {})}
    declared |= {c: "key" for c in spec.get("keys", [])}
    for col in df.columns:
        if col in declared:
            out[col] = declared[col]
        elif pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
            raise UnclassifiedColumn(f"numeric column {col!r} has no suppression role (declare it under suppress: counts, rates, stats or keys)")
        else:
            out[col] = "key"
    return out


def suppress(df: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (table with small cells set to missing, boolean mask of the cells hidden).

    A count from 1 to 10 is hidden. A rate (declared as `rate: [numerator, denominator]`) is hidden when its
    numerator, denominator or denominator - numerator is from 1 to 10. A stat (`stat: n_column`) is hidden when
    its n is from 1 to 10. Hiding uses the raw counts, so a hidden count still hides its rates.
    """
    roles(df, spec)
    out = df.copy()
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    for col in spec.get("counts", []):
        if col in df:
            mask[col] = _small(df[col])
    for col, (num, den) in (spec.get("rates") or {}).items():
        if col in df:
            mask[col] = _small(df[num]) | _small(df[den]) | _small(pd.to_numeric(df[den]) - pd.to_numeric(df[num]))
    for col, n in (spec.get("stats") or {}).items():
        if col in df:
            mask[col] = _small(df[n])
    for col in df.columns:
        if mask[col].any():
            if pd.api.types.is_integer_dtype(out[col]):
                out[col] = out[col].astype("Int64")
            elif pd.api.types.is_numeric_dtype(out[col]):
                out[col] = out[col].astype("float64")
            else:
                out[col] = out[col].astype(object)
            out.loc[mask[col], col] = pd.NA if str(out[col].dtype) == "Int64" else np.nan
    return out, mask


def for_screen(df: pd.DataFrame, mask: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Text version for tables: hidden counts read "<11", hidden rates and stats read "suppressed"."""
    out = df.astype(object).where(df.notna(), None)
    counts = set(spec.get("counts", []))
    for col in df.columns:
        if mask[col].any():
            out.loc[mask[col], col] = SCREEN_MARK if col in counts else "suppressed"
    return out
