"""Who is using this session: whether this server may serve at all, login configuration, the signed-in user's
role and sites."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

import streamlit as st

from outcomes.privacy import access, audit, deploy

LOCAL_BANNER = "Local mode: no login configured. Single user, every site, every right; do not expose this server."
_LOG = logging.getLogger("outcomes.deploy")
_logged: set[str] = set()  # refusals already written to the server log by this process
_logged_lock = threading.Lock()


def secret(name: str):
    """A top-level entry of .streamlit/secrets.toml, or None (also when there is no secrets file)."""
    return st.secrets.get(name) if st.secrets.load_if_toml_exists() else None


def _plain(value):
    # st.secrets sections are Streamlit's own mapping type; the checks take plain dicts
    return {k: _plain(v) for k, v in value.items()} if isinstance(value, Mapping) else value


def decision() -> deploy.Decision:
    """How this server may run, from its listening address (server.address) and the [auth] secrets."""
    auth = secret("auth")
    return deploy.decide(st.get_option("server.address"), None if auth is None else _plain(auth))


def require_serving() -> deploy.Decision:
    """The serving decision; when it is a refusal, a page that says what to configure (and one server-log line
    per process) instead of anything else, and the run stops."""
    found = decision()
    if found.serving:
        return found
    with _logged_lock:
        first = found.message not in _logged
        _logged.add(found.message)
    if first:
        _LOG.error("%s", found.message)
    st.navigation([st.Page(lambda: _refusal(found), title="Not serving", url_path="refused")], position="hidden")
    _refusal(found)
    st.stop()


def _refusal(found: deploy.Decision) -> None:
    st.title("Treatment outcomes")
    st.error("This server is not configured safely, so it shows nothing.", icon=":material/block:")
    st.markdown("**What to configure** (the administrator of this server; also written to the server log):")
    for problem in found.problems:
        st.markdown(f"- {problem}")
    st.caption("The deployment checklist is in docs/security.md.")


def login_configured() -> bool:
    """Whether secrets.toml has an [auth] section: login is then required and access is denied by default."""
    return secret("auth") is not None


def current_user() -> access.User:
    """Who is using this session: the local admin without login; else the signed-in user's role and sites.

    A token that has expired, or an e-mail the provider says is unverified (with no grant by subject id), is
    signed out (st.logout) and sees the sign-in page."""
    if not login_configured():
        return access.LOCAL_USER
    claims = st.user.to_dict()
    if not claims.get("is_logged_in"):
        return access.ANONYMOUS
    try:
        grants = access.load_roles(access.roles_path(secret("roles_file")))
    except access.RolesError as exc:
        _LOG.error("%s", exc)  # details for the operator, not the viewer
        st.error("Access is misconfigured, so nothing can be shown. An administrator can see why in the server log.")
        st.stop()
    user = access.resolve(claims, grants)
    why = None
    if deploy.expired(claims):
        why = "your sign-in has expired"
    elif not user.authorised and not deploy.email_verified(claims):
        why = "the identity provider says this e-mail address is not verified"
    if why is None:
        return user
    who = str(claims.get("email") or claims.get("sub") or "anonymous")
    try:
        audit.write("login", who, audit.log_path(secret("audit_log")), outcome="signed_out", reason=why)
    except audit.AuditError as exc:
        _LOG.error("audit: %s", exc)
    st.session_state["_signed_out"] = f"Signed out: {why}. Sign in again."
    st.logout()
    return access.ANONYMOUS
