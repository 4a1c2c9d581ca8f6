"""The Data page's loads: uploaded extracts validated in a child process, or a configured PostgreSQL schema;
progress, the audit record, the report, and serving the new version."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from outcomes.ingest.problems import LoadError, LoadResult, Problem
from outcomes.privacy import audit
from outcomes.web.audit import log_event
from outcomes.web.auth import secret
from outcomes.web.database import db_path, root_connection
from outcomes.web.gate import require


def refused_record() -> Path:
    """The record of refused loads: beside the audit log this server writes."""
    from outcomes.ingest import uploads

    return audit.log_path(secret("audit_log")).with_name(uploads.REFUSED_LOG)


def upload_limit_mb() -> int:
    """The upload limit in MB: server.maxUploadSize from .streamlit/config.toml."""
    return int(st.get_option("server.maxUploadSize"))


def publish_uploads(files: list, as_of: dt.date | None = None) -> bool:
    """Validate uploaded extracts in a child process with progress and publish them when valid; the report
    when not. Whatever the files hold, a refusal names the file and the server keeps serving."""
    import tempfile

    from outcomes.ingest import uploads

    user = require("manage_data")
    names = sorted(f.name for f in files)[: audit.MAX_ITEMS]
    problems = uploads.check([(f.name, f.size) for f in files], upload_limit_mb())
    if problems:
        uploads.record_refusal(None, problems, user=user.label, path=refused_record(), source=", ".join(names))
        return _report(None, problems, {"files": names, "as_of": as_of})
    with tempfile.TemporaryDirectory(prefix="outcomes-upload-") as tmp:
        uploads.save([(f.name, f) for f in files], Path(tmp))
        return _load(
            lambda progress: uploads.load(tmp, db_path(), as_of, progress, user=user.label, record=refused_record()),
            names,
            as_of,
        )


def postgres_url() -> str | None:
    """The configured PostgreSQL source: `url` in the [postgres] secrets (no password in it), or None."""
    section = secret("postgres")
    return str(section["url"]) if section and section.get("url") else None


def publish_postgres(url: str, as_of: dt.date | None = None) -> bool:
    """Load the contract's tables from the configured PostgreSQL schema (the password from PGPASSWORD, a
    service file or ~/.pgpass), with the same validation, report and publish as uploads."""
    from outcomes.ingest import pg_source, uploads

    user = require("manage_data")
    try:
        shown = pg_source.parse(url).shown
    except pg_source.SourceError as exc:
        problems = [Problem("[postgres] url", None, None, "bad-source", str(exc))]
        return _report(None, problems, {"source": "postgresql (refused URL)", "as_of": as_of})

    def run(progress) -> LoadResult:
        try:
            return pg_source.load(url, db_path(), as_of, progress)
        except LoadError as exc:
            uploads.record_refusal(None, exc.problems, user=user.label, path=refused_record(), source=shown)
            raise

    return _load(run, [shown], as_of, key="source")


def _load(run, names: list[str], as_of: dt.date | None, key: str = "files") -> bool:
    params = {key: names if key == "files" else names[0], "as_of": as_of}
    result, problems = None, []
    with st.status("Validating…", expanded=True) as status:
        bar = st.progress(0.0)
        try:
            result = run(lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
        except LoadError as exc:
            problems = exc.problems
            status.update(label="Not published: the data breaks the data contract", state="error")
        except Exception as exc:
            log_event("data_load", params=params, outcome="error", error=type(exc).__name__)
            raise  # not the message in the log: it could quote a value
        else:
            status.update(label="Published" if result.changed else "No change", state="complete", expanded=False)
    return _report(result, problems, params)


def _report(result: LoadResult | None, problems: list[Problem], params: dict) -> bool:
    log_event(
        "data_load",
        params=params,
        outcome="published" if result and result.changed else "unchanged" if result else "refused",
        problems=len(problems),
        rows=sum(result.rows.values()) if result else None,
        tables=result.rows if result else None,
    )
    if problems:
        st.error(f"Not published: {len(problems)} problem(s). The live data was not changed.")
        st.dataframe(
            pd.DataFrame([vars(p) for p in problems], columns=["file", "line", "column", "rule", "message"]),
            hide_index=True,
            width="stretch",
        )
        return False
    if not result.changed:
        st.info(f"No change: this data is already loaded (data through {result.data_through:%d %b %Y}).")
        return True
    root_connection.clear()  # closes the connection to the replaced file, so every page serves the new version
    rows = ", ".join(f"{k} {v:,}" for k, v in result.rows.items())
    st.success(f"Published: {rows}; data through {result.data_through:%d %b %Y} ({result.seconds:.1f} s).")
    return True
