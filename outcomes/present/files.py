"""Serialise result tables for the terminal and for downloads (CSV, JSON, Excel, Parquet)."""

from __future__ import annotations

import io

import pandas as pd

# Spreadsheet programs execute cells starting with these; prefixing a quote keeps them text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def plain_dates(df: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns holding whole days become ISO date strings."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) and (s.dropna() == s.dropna().dt.normalize()).all():
            out[col] = s.dt.strftime("%Y-%m-%d").where(s.notna(), None)
    return out


def neutralise(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would read as a formula."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
    return out


def with_hidden(df: pd.DataFrame, reasons: pd.DataFrame | None) -> pd.DataFrame:
    """`df` (suppressed: hidden cells empty) with one more column listing each row's hidden columns and why,
    e.g. "stepped_down=small;completed=complement", "" where nothing is hidden (suppress.hidden_column). The
    column is named suppress.HIDDEN_COLUMN ("hidden"), or "hidden_cells" if the table has a "hidden" column."""
    if reasons is None:
        return df
    from outcomes.privacy.suppress import HIDDEN_COLUMN, hidden_column

    name = HIDDEN_COLUMN if HIDDEN_COLUMN not in df.columns else f"{HIDDEN_COLUMN}_cells"
    return df.assign(**{name: hidden_column(reasons.reindex(index=df.index, columns=df.columns, fill_value="")).to_numpy()})


def to_csv(df: pd.DataFrame, reasons: pd.DataFrame | None = None) -> str:
    """CSV text; with `reasons` (suppressed output), plus the column of `with_hidden`."""
    out = neutralise(plain_dates(with_hidden(df, reasons)))
    for col in out.columns:  # a bare CR is not quoted by the csv writer and would start a new row: make it LF
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: v.replace("\r\n", "\n").replace("\r", "\n") if isinstance(v, str) else v)
    return out.to_csv(index=False)


def to_json(df: pd.DataFrame, reasons: pd.DataFrame | None = None) -> str:
    """JSON records; with `reasons` (suppressed output), plus the column of `with_hidden`."""
    return plain_dates(with_hidden(df, reasons)).to_json(orient="records", date_format="iso", indent=1)


def to_table(df: pd.DataFrame) -> str:
    if df.empty:
        return "(no rows)"
    return plain_dates(df).to_string(index=False, na_rep="")


def to_excel(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    neutralise(plain_dates(df)).to_excel(buf, index=False)
    return buf.getvalue()


def to_parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    plain_dates(df).to_parquet(buf, index=False)
    return buf.getvalue()


FORMATS = {"table": to_table, "csv": to_csv, "json": to_json}
