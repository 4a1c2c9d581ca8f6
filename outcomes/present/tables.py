"""Display tables: results as text for the screen, with hidden cells labelled."""

from __future__ import annotations

import pandas as pd

from outcomes.catalog.query import Query
from outcomes.present import files
from outcomes.present.theme import is_rate
from outcomes.privacy import suppress as sup


def format_table(
    df: pd.DataFrame, mask: pd.DataFrame, query: Query, reasons: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Display strings: percentages, thousands separators, and each hidden cell labelled by why it is hidden
    (see suppress.for_screen)."""
    shown = files.plain_dates(df)
    columns = {}
    for col in df.columns:
        s = shown[col]
        text = None
        if is_rate(col) and pd.api.types.is_numeric_dtype(df[col]):
            text = "{:.1%}".format
        elif pd.api.types.is_integer_dtype(df[col]) or str(df[col].dtype) == "Int64":
            text = lambda v: f"{int(v):,}"
        elif pd.api.types.is_float_dtype(df[col]):
            text = "{:,.1f}".format
        if text is None:
            columns[col] = s.astype(object).where(s.notna(), "")
        else:  # column by column in plain Python: a table is small, and pandas' per-call overhead is not
            columns[col] = pd.Series(
                ["" if gone else text(v) for v, gone in zip(s.tolist(), s.isna().tolist())],
                index=df.index,
                dtype=object,
            )
    out = pd.DataFrame(columns, index=df.index)
    return sup.for_screen(out, mask, query.suppress, reasons).fillna("")
