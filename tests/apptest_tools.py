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
