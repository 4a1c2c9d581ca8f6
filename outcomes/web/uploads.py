"""The Data page's side of a load: upload limits, validation with progress, publishing, the report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from outcomes.privacy import audit
from outcomes.web.audit import log_event
from outcomes.web.database import db_path, root_connection
from outcomes.web.gate import require


def upload_limit_mb() -> int:
    """The upload limit in MB: server.maxUploadSize from .streamlit/config.toml."""
    return int(st.get_option("server.maxUploadSize"))


def publish_uploads(files: list, as_of: dt.date | None = None) -> bool:
    """Validate uploaded extracts with progress and publish them when valid; show the report when not."""
    import tempfile

    from outcomes.ingest import uploads
    from outcomes.ingest.loader import load
    from outcomes.ingest.problems import LoadError

    require("manage_data")
    names = sorted(f.name for f in files)[: audit.MAX_ITEMS]
    problems = uploads.check([(f.name, f.size) for f in files], upload_limit_mb())
    result = None
    if not problems:
        with (
            tempfile.TemporaryDirectory(prefix="outcomes-upload-") as tmp,
            st.status("Validating the extracts…", expanded=True) as status,
        ):
            bar = st.progress(0.0)
            uploads.save([(f.name, f) for f in files], Path(tmp))
            try:
                result = load(tmp, db_path(), as_of, progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
            except LoadError as exc:
                problems = exc.problems
                status.update(label="Not published: the extracts break the data contract", state="error")
            except Exception as exc:
                log_event(
                    "data_load", params={"files": names, "as_of": as_of}, outcome="error", error=type(exc).__name__
                )  # not the message: it could quote a value from the files
                raise
            else:
                status.update(label="Published" if result.changed else "No change", state="complete", expanded=False)
    log_event(
        "data_load",
        params={"files": names, "as_of": as_of},
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
        st.info(f"No change: these files are already loaded (data through {result.data_through:%d %b %Y}).")
        return True
    root_connection.clear()  # closes the connection to the replaced file, so every page serves the new version
    rows = ", ".join(f"{k} {v:,}" for k, v in result.rows.items())
    st.success(f"Published: {rows}; data through {result.data_through:%d %b %Y} ({result.seconds:.1f} s).")
    return True
