"""Small-cell suppression: the one place that decides what may be shown or exported.

The parts: outcomes/privacy/cells.py (roles), complement.py (complementary suppression), curves.py (curves),
labels.py (how hidden cells read); their public names are importable from here too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from outcomes.privacy.cells import HIGH, LOW, UnclassifiedColumn, n_columns, roles
from outcomes.privacy.complement import REST, complement, relations
from outcomes.privacy.curves import CURVE_DECIMALS, CURVE_KEYS, curve_mask, published_points
from outcomes.privacy.labels import (
    COMPLEMENT,
    COMPLEMENT_LABEL,
    COMPLEMENT_NOTE,
    FEW_LABEL,
    FEW_NOTE,
    HIDDEN_COLUMN,
    SMALL,
    SMALL_LABEL,
    SMALL_NOTE,
    for_screen,
    guess_reasons,
    hidden_column,
    legend,
)

__all__ = [
    "COMPLEMENT",
    "COMPLEMENT_LABEL",
    "COMPLEMENT_NOTE",
    "CURVE_DECIMALS",
    "CURVE_KEYS",
    "FEW_LABEL",
    "FEW_NOTE",
    "HIDDEN_COLUMN",
    "HIGH",
    "LOW",
    "REST",
    "SMALL",
    "SMALL_LABEL",
    "SMALL_NOTE",
    "UnclassifiedColumn",
    "complement",
    "curve_mask",
    "for_screen",
    "guess_reasons",
    "hidden_column",
    "legend",
    "published_points",
    "reasons",
    "relations",
    "roles",
    "suppress",
    "suppress_detail",
]


def suppress(df: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (table with small cells set to missing, boolean mask of the cells hidden); see `suppress_detail`."""
    out, mask, _ = suppress_detail(df, spec)
    return out, mask


def suppress_detail(df: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return (table with small cells set to missing, boolean mask of the cells hidden, why each is hidden).

    A count from 1 to 10 is hidden. A rate (declared as `rate: [numerator, denominator]`) is hidden when its
    numerator, denominator or denominator - numerator is from 1 to 10. A stat (`stat: n_column`, or a list of
    n columns) is hidden when an n is from 1 to 10. Hiding uses the raw counts, so a hidden count still hides
    its rates. A declared `curve` is published in coarse steps (`curve_mask`).

    Then complementary suppression (`complement`) hides more counts until no hidden small count can be narrowed
    from the shown ones through the table's sums, and every rate or stat whose counts are hidden is hidden.
    The third frame holds, for each hidden cell, SMALL or COMPLEMENT (see `reasons`), and "" elsewhere.
    """
    roles(df, spec)
    num = _numbers(df, spec)
    small = {c: (x >= LOW) & (x <= HIGH) for c, x in num.items()}
    hide = {col: np.zeros(len(df), dtype=bool) for col in df.columns}
    for col in spec.get("counts", []):
        if col in df:
            hide[col] = small[col]
    for col, (n, d) in (spec.get("rates") or {}).items():
        if col in df:
            rest = num[d] - num[n]
            hide[col] = small[n] | small[d] | ((rest >= LOW) & (rest <= HIGH))
    for col, n in (spec.get("stats") or {}).items():
        if col in df:
            hide[col] = np.logical_or.reduce([small[c] for c in n_columns(n)])
    mask = pd.DataFrame(hide, index=df.index, columns=df.columns)
    mask = curve_mask(df, mask, spec.get("curve"))
    mask = complement(df, mask, spec)
    out = df.copy()
    if spec.get("curve"):
        estimate = spec["curve"]["estimate"]
        out[estimate] = pd.to_numeric(out[estimate]).round(CURVE_DECIMALS)
    hidden = mask.to_numpy(dtype=bool)
    for k in np.flatnonzero(hidden.any(axis=0)):
        col = df.columns[k]
        if pd.api.types.is_integer_dtype(out[col]):
            out[col] = out[col].astype("Int64")
        elif pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].astype("float64")
        else:
            out[col] = out[col].astype(object)
        out.loc[hidden[:, k], col] = pd.NA if str(out[col].dtype) == "Int64" else np.nan
    return out, mask, _reasons(df, hidden, small, spec)


def _numbers(df: pd.DataFrame, spec: dict) -> dict[str, np.ndarray]:
    """Every count, and every column a rate or stat is worked out from, as floats (NaN where missing)."""
    cols = [c for c in spec.get("counts", []) if c in df]
    cols += [c for pair in (spec.get("rates") or {}).values() for c in pair if c in df]
    cols += [c for n in (spec.get("stats") or {}).values() for c in n_columns(n) if c in df]
    return {
        c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan) for c in dict.fromkeys(cols)
    }


def reasons(df: pd.DataFrame, mask: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Why each hidden cell of `mask` is hidden, from the raw table `df`: SMALL, COMPLEMENT, or "" if shown.

    A count is SMALL when its value is from 1 to 10, else COMPLEMENT (hidden only to protect another cell; its
    value is 0 or 11 and up). A rate is SMALL when its numerator or denominator is a SMALL count, else
    COMPLEMENT (among them a rate hidden because denominator - numerator is 1 to 10: saying SMALL there would
    tell that difference). A stat is SMALL when one of its n columns is a SMALL count, else COMPLEMENT (a curve
    value hidden between published days, or an n hidden to protect another cell). A rate's or stat's reason
    follows only from its counts' reasons, which are shown anyway, so the reasons tell nothing more.
    """
    small = {c: (x >= LOW) & (x <= HIGH) for c, x in _numbers(df, spec).items()}
    return _reasons(df, mask.to_numpy(dtype=bool), small, spec)


def _reasons(df: pd.DataFrame, hidden: np.ndarray, small: dict, spec: dict) -> pd.DataFrame:
    out = np.full(hidden.shape, "", dtype=object)
    at = {c: k for k, c in enumerate(df.columns)}
    counts = [c for c in spec.get("counts", []) if c in at]
    for c in counts:
        out[:, at[c]] = np.where(hidden[:, at[c]], np.where(small[c], SMALL, COMPLEMENT), "")
    behind = {col: [n, d] for col, (n, d) in (spec.get("rates") or {}).items()}
    behind |= {col: n_columns(n) for col, n in (spec.get("stats") or {}).items()}
    for col, ns in behind.items():
        if col in at:
            from_small = np.logical_or.reduce([small[c] & hidden[:, at[c]] if c in counts else small[c] for c in ns])
            out[:, at[col]] = np.where(hidden[:, at[col]], np.where(from_small, SMALL, COMPLEMENT), "")
    return pd.DataFrame(out, index=df.index, columns=df.columns)
