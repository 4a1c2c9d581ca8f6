"""Ad-hoc SQL on the Explore page: one read-only statement, limits, conservative suppression, save as a query."""

from __future__ import annotations

import duckdb
import pandas as pd
import streamlit as st

from outcomes.catalog import runner
from outcomes.present.tables import format_table
from outcomes.web import context
from outcomes.web.audit import log_adhoc
from outcomes.web.database import root_connection
from outcomes.web.downloads import exports


def adhoc_panel() -> None:
    """Ad-hoc SQL: one read-only statement, time limit and row cap, conservative suppression; save as a query."""
    import types

    from outcomes.catalog import adhoc, scaffold

    run = context.current()
    if not run.user.can("adhoc_sql"):
        st.info("Ad-hoc SQL needs the analyst or admin role with every site.")
        return
    st.caption(
        f"One read-only statement (select, with, from, values, describe, show, summarize) on the loaded "
        f"database; stopped after {adhoc.DEFAULT_TIMEOUT:g} s; the first {adhoc.DEFAULT_MAX_ROWS:,} rows are "
        "shown. Every whole-number column is treated as a count: 1–10 is hidden, and so are the other "
        "numbers on that row. See docs/adding-a-query.md."
    )
    with st.expander("Tables you can query"):
        st.dataframe(adhoc.tables(root_connection(run.version)), hide_index=True, width="stretch")
    sql = st.text_area(
        "SQL (Ctrl+Enter runs it)",
        key="adhoc_sql",
        height=160,
        placeholder="select site, level_of_care, count(*) as episodes\nfrom episodes\ngroup by all",
    )
    if not (sql or "").strip():
        return
    ran = (sql, run.version)
    if st.session_state.get("_adhoc_ran") != ran:  # run once per statement and data version, not on every rerun
        st.session_state["_adhoc_ran"] = ran
        st.session_state["_adhoc"] = st.session_state["_adhoc_error"] = None
        try:
            result = adhoc.run(root_connection(run.version), sql)
        except adhoc.Refused as exc:
            st.session_state["_adhoc_error"] = str(exc)[:1].upper() + str(exc)[1:]
            log_adhoc(sql, "refused", error=str(exc))
        except runner.QueryTimeout as exc:
            st.session_state["_adhoc_error"] = f"Stopped: {exc}"
            log_adhoc(sql, "timeout", error=str(exc))
        except (adhoc.QueryFailed, duckdb.Error) as exc:
            st.session_state["_adhoc_error"] = str(exc).splitlines()[0]
            log_adhoc(sql, "error", error=str(exc).splitlines()[0])
        else:
            log_adhoc(sql, "ok", rows=len(result.data), seconds=result.seconds)
            st.session_state["_adhoc"] = result  # suppressed data only
    if st.session_state.get("_adhoc_error"):
        st.error(st.session_state["_adhoc_error"])
    result = st.session_state.get("_adhoc")
    if result is None:
        return
    note = f"{len(result.data):,} rows in {result.seconds:.2f} s"
    if result.truncated:
        st.warning(f"Truncated: showing the first {len(result.data):,} rows. Aggregate, or add a where or limit.")
    hidden = int(result.mask.to_numpy().sum())
    st.caption(note + (f" · {hidden} small cells hidden" if hidden else ""))
    spec = types.SimpleNamespace(suppress={"counts": result.counts})
    st.dataframe(format_table(result.data, result.mask, spec, result.reasons), hide_index=True, width="stretch")
    exports(result.data, "adhoc", key="adhoc", reasons=result.reasons, title="Ad-hoc SQL", query="adhoc")
    name = st.text_input(
        "Save as query: name",
        value="new_query",
        key="adhoc_name",
        help="lower_snake_case; the file goes into queries/ and `python -m outcomes check` says "
        "what is left to fill in",
    )
    numeric = [
        c
        for c in result.data.columns
        if c not in result.counts
        and pd.api.types.is_numeric_dtype(result.data[c])
        and not pd.api.types.is_bool_dtype(result.data[c])
    ]
    st.download_button(
        "Save as query",
        scaffold.from_statement(result.sql, name or "new_query", result.counts, numeric),
        file_name=f"{name or 'new_query'}.sql",
        mime="text/plain",
        key="adhoc-save",
        on_click="ignore",
    )
