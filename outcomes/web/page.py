"""Starting a page: the first-request pages/ mode, the view permission, the title and the page-view record."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from outcomes.web import a11y
from outcomes.web.audit import log_view
from outcomes.web.gate import require


def page(title: str) -> None:
    """Start a page. On a server's very first request Streamlit may run a deep-linked page without app.py
    (its legacy pages/ mode, chosen once per process); rerun once so navigation and filters apply."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory or _without_app():
        PagesManager.uses_pages_directory = False
        st.rerun()
    require("view")
    st.title(title)
    a11y.patch()
    log_view(title)


def _without_app() -> bool:
    """This run executed a page file through Streamlit's pages/ mode instead of app.py. The mode is one flag per
    process: when several first visitors deep-link at once, the first one's rerun clears the flag while the
    others are already running their page alone (no navigation, no sidebar filters)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return False
    manager = ctx.pages_manager
    if manager.current_page_script_hash in ("", manager.main_script_hash):
        return False  # the main script itself is running (app.py, or a page run on its own by a test)
    main = Path(ctx.main_script_path).resolve()
    return any(Path(str(info.get("script_path", ""))).resolve() == main for info in manager.get_pages().values())
