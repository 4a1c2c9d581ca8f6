"""What a suppression spec says of a result's columns: the small-count bounds and each column's role."""

from __future__ import annotations

import pandas as pd

LOW, HIGH = 1, 10  # counts from 1 to 10 are hidden; zero is shown


class UnclassifiedColumn(Exception):
    """A numeric result column has no suppression role, so it cannot be shown safely."""


def _small(values: pd.Series) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce")
    return (v >= LOW) & (v <= HIGH)


def n_columns(n) -> list[str]:
    """A stat's n: one column or a list of them."""
    return list(n) if isinstance(n, (list, tuple)) else [n]


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
            raise UnclassifiedColumn(
                f"numeric column {col!r} has no suppression role (declare it under suppress: counts, rates, stats or keys)"
            )
        else:
            out[col] = "key"
    return out
