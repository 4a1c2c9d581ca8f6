"""Helpers for AppTest runs of the dashboard's pages."""

from __future__ import annotations


def open_tables(at):
    """Open every "Table" expander on the page (session state `table-KEY`, see ui.table_expander) and rerun, so
    the tables are drawn; returns `at`."""
    keys = [k for k in at.session_state if str(k).startswith("table-")]
    for k in keys:
        at.session_state[k] = True
    if keys:
        at.run()
    return at


# A valid [auth] section (outcomes.privacy.deploy.check_auth passes it); no provider is contacted until st.login.
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "9f2c4e7a1b8d3f6e0a5c9b2d7e4f1a8c3b6d0e9f2a5c8b1d4e7f0a3c6b9d2e5f",
    "client_id": "0oa1b2c3d4",
    "client_secret": "kq8ZpL2vN5xR7tW1yB4cF6hJ9mQ3sD0g",
    "server_metadata_url": "https://login.provider.net/.well-known/openid-configuration",
}
