"""Audit events from the app: page views, catalog runs, denials, for the current user and page (ad-hoc SQL is
logged by outcomes.catalog.sandbox, downloads by outcomes.web.downloads)."""

from __future__ import annotations

import logging

import streamlit as st

from outcomes.catalog.params import frozen
from outcomes.privacy import access, audit
from outcomes.web import context


def log_event(kind: str, **details) -> None:
    """Append an audit event for the current user and page. With login on, a log that cannot be written stops
    the page (fail closed); in local mode it only warns."""
    run = context.current()
    details = {"page": run.page} | details | who(run.user)
    try:
        audit.write(kind, run.user.label, path=audit.log_path(context.secret("audit_log")), **details)
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


def log_run(key: tuple, query: str, params: dict, rows: int, suppressed: int) -> None:
    """A catalog query a person asked for (a page panel, an Explore run or parameter change): once per distinct
    run (`key`) in a session, not on every rerun."""
    seen = st.session_state.setdefault("_runs_logged", set())
    if key in seen:
        return
    log_event("query_run", query=query, params=params, rows=rows, suppressed=suppressed)
    seen.add(key)
