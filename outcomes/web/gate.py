"""The way in: navigation for users with a role, the sign-in and not-authorised page, and permission checks."""

from __future__ import annotations

import streamlit as st

from outcomes.privacy import access
from outcomes.web import context
from outcomes.web.audit import log_once
from outcomes.web.auth import LOCAL_BANNER, secret


def navigation(pages):
    """st.navigation for a user with a role. With login on, a signed-out user or one without a role gets a
    single page instead (sign in, or "not authorised") and nothing else. Call in place of st.navigation."""
    run = context.current()
    user = run.user
    if not user.authorised:
        return st.navigation(
            [st.Page(_no_access, title="Treatment outcomes", url_path="access", default=True)], position="hidden"
        )
    nav = st.navigation(pages)
    run.page = nav.url_path or "/"  # the default page's url_path is ""
    if user.local:
        st.info(LOCAL_BANNER, icon=":material/lock_open:")
    else:
        st.sidebar.caption(
            f"Signed in as **{user.email}** · {user.role} · "
            + ("all sites" if user.sites is None else ", ".join(user.sites))
        )
        if st.sidebar.button("Log out", key="_logout"):
            st.logout()
    return nav


def _no_access() -> None:
    user = context.current().user
    st.title("Treatment outcomes")
    if not user.signed_in:
        auth = secret("auth") or {}
        providers = [None] if "client_id" in auth else [k for k, v in auth.items() if hasattr(v, "keys")]
        if st.session_state.get("_signed_out"):
            st.warning(st.session_state["_signed_out"])
        st.write("Sign in to see the dashboard.")
        for provider in providers or [None]:
            if st.button(f"Sign in with {provider}" if provider else "Sign in", key=f"_login-{provider}"):
                st.login(provider)
        return
    st.error(
        f"Not authorised: {user.email or 'this account'} has no role in this dashboard. "
        "Ask an administrator to add you to the roles file."
    )
    log_once("denied", reason="no role", action="view")
    if st.button("Log out", key="_logout"):
        st.logout()


def require(action: str) -> access.User:
    """The current user if they may do `action`; otherwise "not authorised" (logged) and the page stops."""
    user = context.current().user
    if user.can(action):
        return user
    st.error(
        "Not authorised: your role does not allow this."
        + ("" if user.authorised else " Sign in with an account that has a role.")
    )
    log_once("denied", reason=f"{user.role or 'no role'} may not {action}", action=action)
    st.stop()
