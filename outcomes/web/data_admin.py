"""The Data page's record-keeping: whether the audit log's chain is whole, and the loads that were refused."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from outcomes.privacy import audit
from outcomes.privacy.audit_verify import verify
from outcomes.web.auth import secret


def audit_state() -> None:
    """The audit log's verification: OK with its line count and last hash, or the first broken line. Checked
    once per session (the whole log is read) and again on request."""
    path = audit.log_path(secret("audit_log"))
    slot = st.container()  # the state above its button
    if st.button("Verify again", key="audit-verify") or "_audit_state" not in st.session_state:
        st.session_state["_audit_state"] = verify(path)
    state = st.session_state["_audit_state"]
    if state.ok:
        slot.success(state.summary(), icon=":material/verified:")
    else:
        slot.error(
            f"Audit log BROKEN at {state.file} line {state.line}: {state.problem}. Compare it with the copy in "
            "write-once storage (docs/security.md).",
            icon=":material/gpp_bad:",
        )


def refused_loads() -> None:
    """The most recent refused loads: when, who, which files (name, size, SHA-256 prefix), the rules broken."""
    from outcomes.ingest import uploads

    entries = uploads.refused_loads(
        uploads.record_path(audit.log_path(secret("audit_log")).with_name(uploads.REFUSED_LOG))
    )
    if not entries:
        st.caption("No load has been refused.")
        return
    rows = [
        {
            "time": e.get("time"),
            "user": e.get("user"),
            "source": e.get("source")
            or ", ".join(f"{f['name']} ({f['bytes']:,} B, {f['sha256'][:12]}…)" for f in e.get("files", [])),
            "problems": e.get("problems"),
            "rules": ", ".join(f"{rule} ×{n}" for rule, n in sorted((e.get("rules") or {}).items())),
        }
        for e in entries
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
