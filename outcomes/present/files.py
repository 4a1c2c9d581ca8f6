"""Serialise result tables for the terminal and for downloads (CSV, JSON, Excel, Parquet).

Spreadsheet exports cannot carry a formula: a cell or column header that starts with = + - @ (also their
full-width forms), a tab, CR or LF, or with white space followed by one of them, gets a leading quote. The
Excel workbook also carries the 42 CFR part 2 notice and the data use statement (outcomes.present.notice).
"""

from __future__ import annotations

import hashlib
import io
import re

import pandas as pd

# Spreadsheet programs execute cells starting with these (after any white space); a leading quote keeps them text.
_FORMULA_CHARS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
_CONTROL_START = ("\t", "\r", "\n")


def formula_like(value) -> bool:
    """Whether a spreadsheet could read `value` as a formula."""
    if not isinstance(value, str) or not value:
        return False
    if value.startswith(_CONTROL_START):
        return True
    rest = value.lstrip()
    return bool(rest) and rest[0] in _FORMULA_CHARS


def plain_dates(df: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns holding whole days become ISO date strings."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) and (s.dropna() == s.dropna().dt.normalize()).all():
            out[col] = s.dt.strftime("%Y-%m-%d").where(s.notna(), None)
    return out


def _quoted(value):
    return "'" + value if formula_like(value) else value


def neutralise(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells and column headers that a spreadsheet would read as a formula."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(_quoted)
    out.columns = [_quoted(c) for c in out.columns]
    return out


def with_hidden(df: pd.DataFrame, reasons: pd.DataFrame | None) -> pd.DataFrame:
    """`df` (suppressed: hidden cells empty) with one more column listing each row's hidden columns and why,
    e.g. "stepped_down=small;completed=complement", "" where nothing is hidden (suppress.hidden_column). The
    column is named suppress.HIDDEN_COLUMN ("hidden"), or "hidden_cells" if the table has a "hidden" column."""
    if reasons is None:
        return df
    from outcomes.privacy.suppress import HIDDEN_COLUMN, hidden_column

    name = HIDDEN_COLUMN if HIDDEN_COLUMN not in df.columns else f"{HIDDEN_COLUMN}_cells"
    return df.assign(
        **{name: hidden_column(reasons.reindex(index=df.index, columns=df.columns, fill_value="")).to_numpy()}
    )


RATE_DECIMALS = 4  # a share as 0.1234 (12.34%): finer than any chart or table shows
OTHER_DECIMALS = 2  # days, ratios, expected counts


def rounded(df: pd.DataFrame) -> pd.DataFrame:
    """Decimals as a download carries them: rates and shares to RATE_DECIMALS, other decimals to OTHER_DECIMALS
    (a stored float has 16 digits, most of them noise to a reader)."""
    from outcomes.present.theme import is_rate

    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(RATE_DECIMALS if is_rate(str(col)) else OTHER_DECIMALS)
    return out


def export_csv(df: pd.DataFrame, reasons: pd.DataFrame | None = None) -> str:
    """The CSV a download button gives: `to_csv` of the rounded table."""
    return to_csv(rounded(df), reasons)


def _tag(value) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(_tag(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)).strip("-")


def export_name(stem: str, ext: str, data_through=None, filters: dict | None = None) -> str:
    """A download's file name carrying its data-through date and filters, in characters every file system and
    spreadsheet accepts: "stepdown_rate_through-2025-10-31_sites-Northside_payers-medicaid.csv". Long filter
    lists are cut and end in a short digest of the whole, so two views never share a name."""
    parts = [stem] + ([f"through-{_tag(data_through)}"] if data_through else [])
    tags = [f"{k}-{_tag(v)}" for k, v in (filters or {}).items() if v not in (None, [], ())]
    tag = "_".join(tags)
    if len(tag) > 80:
        tag = tag[:70].rstrip("_-+") + "-" + hashlib.sha1(tag.encode()).hexdigest()[:8]
    return "_".join(parts + ([tag] if tag else [])) + f".{ext}"


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


def to_excel(df: pd.DataFrame, notice=None, about: dict | None = None, reasons: pd.DataFrame | None = None) -> bytes:
    """The rounded table on the first sheet (its printed footer the short notice; with `reasons`, the column
    saying which cells are hidden and why), `about` (what the table is: its data-through date, filters, what
    the hidden labels mean) on an "About" sheet, the full notice on a "Notice" sheet and in the workbook's
    properties."""
    from openpyxl.styles import Alignment, Font

    from outcomes.present import notice as notices

    n = notice or notices.load()
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        neutralise(plain_dates(with_hidden(rounded(df), reasons))).to_excel(writer, index=False, sheet_name="Data")
        book = writer.book
        data = writer.sheets["Data"]
        data.oddFooter.center.text = n.short
        data.evenFooter.center.text = n.short
        if about:
            info = book.create_sheet("About")
            info.column_dimensions["A"].width = 22
            info.column_dimensions["B"].width = 100
            info["A1"] = "About this file"
            info["A1"].font = Font(bold=True)
            for row, (key, text) in enumerate(about.items(), start=2):
                info.cell(row=row, column=1, value=_quoted(str(key))).font = Font(bold=True)
                cell = info.cell(row=row, column=2, value=_quoted(str(text)))
                cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet = book.create_sheet("Notice")
        sheet.column_dimensions["A"].width = 120
        sheet["A1"] = "Notice (42 CFR part 2)"
        sheet["A1"].font = Font(bold=True)
        for row, text in ((2, n.part2), (4, n.data_use), (6, n.short)):
            sheet.cell(row=row, column=1, value=text).alignment = Alignment(wrap_text=True, vertical="top")
        book.properties.subject = n.short
        book.properties.description = n.full
    return buf.getvalue()


def to_parquet(df: pd.DataFrame, notice=None) -> bytes:
    """Parquet with the notice in the file's key-value metadata (`notice`, `data_use`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from outcomes.present import notice as notices

    n = notice or notices.load()
    table = pa.Table.from_pandas(plain_dates(df), preserve_index=False)
    table = table.replace_schema_metadata(
        (table.schema.metadata or {}) | {b"notice": n.part2.encode(), b"data_use": n.data_use.encode()}
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


FORMATS = {"table": to_table, "csv": to_csv, "json": to_json}
