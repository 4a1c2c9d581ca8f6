"""How hidden cells read: the two reasons, their labels and notes, and the text forms of a suppressed table."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Why a cell is hidden (`reasons`), and how a hidden cell reads on screen. One vocabulary for every output.
SMALL = "small"  # a count of 1 to 10, or a rate or stat worked out from one
COMPLEMENT = "complement"  # hidden so that a small count cannot be worked out from the cells shown
SMALL_LABEL = "1–10"  # a hidden count of 1 to 10 (never used for anything else)
FEW_LABEL = "too few"  # a hidden rate or stat whose numerator, denominator or n is a count of 1 to 10
COMPLEMENT_LABEL = "hidden"  # hidden to protect another cell; may be any value except 1 to 10
SMALL_NOTE = "1–10: a count from 1 to 10, not shown"
FEW_NOTE = "too few: worked out from a count of 1 to 10, not shown"
COMPLEMENT_NOTE = "hidden: hidden so that a small number cannot be worked out"
HIDDEN_COLUMN = "hidden"  # the column of a suppressed CSV or JSON export listing a row's hidden cells and why


def for_screen(df: pd.DataFrame, mask: pd.DataFrame, spec: dict, why: pd.DataFrame | None = None) -> pd.DataFrame:
    """Text version for tables: a hidden count reads SMALL_LABEL ("1–10") when SMALL, a hidden rate or stat
    FEW_LABEL ("too few") when SMALL, and any other hidden cell COMPLEMENT_LABEL ("hidden").

    `why` is the reasons frame of `suppress_detail`; without it, see `guess_reasons`.
    """
    out = df.astype(object).where(df.notna(), None)
    why = guess_reasons(mask, spec) if why is None else why
    counts = set(spec.get("counts", []))
    for col in df.columns:
        if mask[col].any():
            hidden = mask[col].to_numpy(dtype=bool)
            small = hidden & (why[col].to_numpy() == SMALL)
            out.loc[small, col] = SMALL_LABEL if col in counts else FEW_LABEL
            out.loc[hidden & ~small, col] = COMPLEMENT_LABEL
    return out


def guess_reasons(mask: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Reasons for a mask that came without them. With no sums and no curve declared nothing is hidden to
    protect another cell, so every hidden cell is SMALL; otherwise every hidden cell reads COMPLEMENT, which
    never calls a cell of 11 or more small."""
    sums = spec.get("totals") or spec.get("rates") or spec.get("total_rows") or spec.get("curve")
    return pd.DataFrame(
        np.where(mask.to_numpy(dtype=bool), COMPLEMENT if sums else SMALL, ""),
        index=mask.index,
        columns=mask.columns,
        dtype=object,
    )


def hidden_column(why: pd.DataFrame) -> pd.Series:
    """For each row, its hidden columns and why, as `column=reason` joined by ";" (e.g.
    "stepped_down=small;completed=complement"); "" when nothing on the row is hidden."""
    cols = list(why.columns)
    values = why.to_numpy(dtype=object)
    text = [";".join(f"{c}={r}" for c, r in zip(cols, row) if r) for row in values]
    return pd.Series(text, index=why.index, dtype=object)


def legend(why: pd.DataFrame, spec: dict) -> str:
    """The one line to print under a table or chart that hides anything ("" when nothing is hidden): the notes
    for the labels it uses, joined by " · "."""
    counts = [c for c in why.columns if c in set(spec.get("counts", []))]
    others = [c for c in why.columns if c not in counts]
    notes = []
    if counts and (why[counts] == SMALL).to_numpy().any():
        notes.append(SMALL_NOTE)
    if others and (why[others] == SMALL).to_numpy().any():
        notes.append(FEW_NOTE)
    if (why == COMPLEMENT).to_numpy().any():
        notes.append(COMPLEMENT_NOTE)
    return " · ".join(notes)
