"""Download buttons whose files are made once, on click, and logged with the SHA-256 of the bytes served."""

from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from outcomes.present import files
from outcomes.privacy import audit
from outcomes.web import context
from outcomes.web.audit import who
from outcomes.web.gate import require


def download(
    label: str,
    data,
    file_name: str,
    mime: str,
    *,
    key: str,
    query: str | None = None,
    params: dict | None = None,
    rows: int | None = None,
    raw: bool = False,
) -> None:
    """A download button whose file is made only when clicked, and logged as an export when it is made: its
    format, rows and the SHA-256 and size of the exact bytes served.

    `data` is a callable returning the file's contents. Raw (unsuppressed) exports need the "raw" permission.
    """
    user = require("raw" if raw else "export")
    fmt = file_name.rsplit(".", 1)[-1].lower()
    details = dict(page=context.current().page, query=query, params=params, raw=raw) | who(user)
    # a parameter that cannot be logged fails now, not on click
    audit.event("export", user.label, file=file_name, format=fmt, rows=rows, **details)
    path = audit.log_path(context.secret("audit_log"))

    def make() -> bytes:
        # Runs on a server thread when the browser asks for the file: the bytes are made once, logged with
        # their hash, and those very bytes are served; an export that cannot be logged is not served.
        body = data()
        body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        audit.download(user.label, file_name, fmt, body, rows=rows, path=path, **details)
        return body

    st.download_button(label, make, file_name=file_name, mime=mime, key=key, on_click="ignore")


def exports(
    df: pd.DataFrame,
    stem: str,
    key: str | None = None,
    reasons: pd.DataFrame | None = None,
    title: str | None = None,
    **log,
) -> None:
    """CSV, Excel and Parquet downloads of an already-suppressed table (the CSV and Excel say which cells are
    hidden and why; the Excel's About sheet, and every file's name, say the data-through date and filters)."""
    from outcomes.web import export_info

    cols = st.columns(4)
    params = {k: v for k, v in (log.get("params") or {}).items() if k not in ("filters",)}
    about = export_info.about(
        title or stem, {"Query": f"{log.get('query') or stem}", "Values": export_info.values_text(params)}
    )
    formats = (
        ("CSV", functools.partial(files.export_csv, reasons=reasons), "csv", "text/csv"),
        (
            "Excel",
            functools.partial(files.to_excel, about=about, reasons=reasons),
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        ("Parquet", files.to_parquet, "parquet", "application/vnd.apache.parquet"),
    )
    for col, (label, write, ext, mime) in zip(cols, formats):
        with col:
            download(
                f"Download {label}",
                functools.partial(write, df),
                export_info.file_name(stem, ext),
                mime,
                key=f"{key or stem}-{ext}",
                rows=len(df),
                **log,
            )
