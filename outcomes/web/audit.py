"""Audit events from the app: page views, denials, ad-hoc SQL, for the current user and page."""

from __future__ import annotations

import logging

import streamlit as st

from outcomes.catalog.params import frozen
from outcomes.privacy import access, audit
from outcomes.web import context
from outcomes.web.auth import secret


def log_event(kind: str, **details) -> None:
    """Append an audit event for the current user and page. With login on, a log that cannot be written stops
    the page (fail closed); in local mode it only warns."""
    run = context.current()
    details = {"page": run.page} | details | who(run.user)
    try:
        audit.write(kind, run.user.label, path=audit.log_path(secret("audit_log")), **details)
    except audit.AuditError as exc:
        logging.getLogger(__name__).error("audit: %s", exc)
        if run.user.local:
            st.warning("The audit log could not be written (see the server log).")
            return
        st.error("The audit log cannot be written, so nothing more is shown. Tell an administrator.")
        st.stop()


def who(user: access.User) -> dict:
    return {"role": user.role, "sites": "*" if user.scope is None else list(user.scope)}


def log_once(kind: str, **details) -> None:
    # Reruns (every widget change) repeat a page; log a denial once per session, page and reason.
    key = (kind, context.current().page, tuple(sorted(map(str, details.items()))))
    seen = st.session_state.setdefault("_audited", set())
    if key not in seen:
        seen.add(key)
        log_event(kind, **details)


def log_view(title: str) -> None:
    # A page view is logged when the page or the global filters change, not on every rerun.
    run = context.current()
    filters_now = {k: v for k, v in run.filters.items() if v is not None}
    key = (run.page, frozen(filters_now))
    if st.session_state.get("_viewed") != key:
        st.session_state["_viewed"] = key
        log_event("page_view", page=run.page, params=filters_now, title=title)


def log_adhoc(
    sql: str, outcome: str, rows: int | None = None, seconds: float | None = None, error: str | None = None
) -> None:
    """Record one ad-hoc SQL run: its text and outcome ("ok", "refused", "error", "timeout"), never its rows.

    Of a database error only the kind is kept ("Conversion Error", ...): its message can quote a value."""
    if outcome == "error" and error:
        error = error.split(":", 1)[0].strip()[:80]
    log_event(
        "adhoc_sql",
        sql=sql,
        outcome=outcome,
        rows=rows,
        seconds=None if seconds is None else round(seconds, 3),
        error=error,
    )
