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


def to_csv(df: pd.DataFrame) -> str:
    out = neutralise(plain_dates(df))
    for col in out.columns:  # a bare CR is not quoted by the csv writer and would start a new row: make it LF
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: v.replace("\r\n", "\n").replace("\r", "\n") if isinstance(v, str) else v)
    return out.to_csv(index=False)


def to_json(df: pd.DataFrame) -> str:
    return plain_dates(df).to_json(orient="records", date_format="iso", indent=1)


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
