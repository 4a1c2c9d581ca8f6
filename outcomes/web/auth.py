"""Who is using this session: login configuration, the signed-in user's role and sites."""

from __future__ import annotations

import logging

import streamlit as st

from outcomes.privacy import access

LOCAL_BANNER = "Local mode: no login configured. Single user, every site, every right; do not expose this server."


def secret(name: str):
    """A top-level entry of .streamlit/secrets.toml, or None (also when there is no secrets file)."""
    return st.secrets.get(name) if st.secrets.load_if_toml_exists() else None


def login_configured() -> bool:
    """Whether secrets.toml has an [auth] section: login is then required and access is denied by default."""
    return bool(secret("auth"))


def current_user() -> access.User:
    """Who is using this session: the local admin without login; else the signed-in user's role and sites."""
    if not login_configured():
        return access.LOCAL_USER
    claims = st.user.to_dict()
    if not claims.get("is_logged_in"):
        return access.ANONYMOUS
    try:
        grants = access.load_roles(access.roles_path(secret("roles_file")))
    except access.RolesError as exc:
        logging.getLogger(__name__).error("%s", exc)  # details for the operator, not the viewer
        st.error("Access is misconfigured, so nothing can be shown. An administrator can see why in the server log.")
        st.stop()
    return access.resolve(claims, grants)
