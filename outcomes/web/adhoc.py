"""Ad-hoc SQL on the Explore page: one read-only statement, limits, conservative suppression, save as a query."""

from __future__ import annotations

import logging
import os

import pandas as pd
import streamlit as st

from outcomes.catalog import adhoc, sandbox
from outcomes.present.tables import format_table
from outcomes.privacy import audit
from outcomes.web import context
from outcomes.web.audit import who
from outcomes.web.auth import secret
from outcomes.web.database import root_connection
from outcomes.web.downloads import exports

TIMEOUT_ENV = "OUTCOMES_SQL_TIMEOUT"
WORKER_WAIT = 20.0  # seconds a statement may wait for a free worker (one may be starting on a busy machine)


def timeout() -> float:
    """Seconds an ad-hoc statement may take from the Explore page: $OUTCOMES_SQL_TIMEOUT, else 10."""
    return float(os.environ.get(TIMEOUT_ENV) or adhoc.DEFAULT_TIMEOUT)


def _run(sql: str, raw: bool) -> tuple[adhoc.AdhocResult | None, str | None]:
    """Run one statement in a sandbox worker, logged before and after; (result, None) or (None, one line)."""
    run = context.current()
    try:
        result = sandbox.run(
            sql,
            run.version.path,
            raw=raw,
            timeout=timeout(),
            wait=WORKER_WAIT,
            user=run.user.label,
            log=audit.log_path(secret("audit_log")),
            page=run.page,
            **who(run.user),
        )
    except adhoc.Refused as exc:
        return None, str(exc)[:1].upper() + str(exc)[1:]
    except sandbox.Stopped as exc:
        return None, f"Stopped after {exc.seconds:.1f} s, limit {exc.limit:g} s. The next statement runs as usual."
    except sandbox.MemoryExceeded as exc:
        return None, f"Stopped: {exc}. The next statement runs as usual."
    except adhoc.QueryFailed as exc:  # DuckDB's error, a crashed worker, a result over the size cap
        return None, str(exc).splitlines()[0]
    except audit.AuditError as exc:  # nothing runs unlogged
        logging.getLogger(__name__).error("audit: %s", exc)
        return None, "Not run: the audit log cannot be written. Tell an administrator."
    return result, None


def adhoc_panel() -> None:
    """Ad-hoc SQL: one read-only statement, time limit and row cap, conservative suppression; save as a query."""
    import types

    from outcomes.catalog import scaffold

    run = context.current()
    if not run.user.can("adhoc_sql"):
        st.info("Ad-hoc SQL needs the analyst or admin role with every site.")
        return
    sandbox.default_pool()  # workers start while the statement is typed
    st.caption(
        f"One read-only statement (select, with, from, values, describe, show, summarize) on the loaded "
        f"database, in a worker process of its own; stopped after {timeout():g} s; the first {adhoc.DEFAULT_MAX_ROWS:,} rows are "
        "shown. Every whole-number value is treated as a count: 1–10 is hidden, and so are the other "
        "numbers on that row. Every statement is recorded in the audit log. See docs/adding-a-query.md."
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
    raw = False
    if run.user.role == "admin" and run.user.can("raw"):
        raw = st.toggle(
            "Raw values: no suppression (admins only; the audit log records it)", key="adhoc_raw", value=False
        )
    ran = (sql, run.version, raw)
    if st.session_state.get("_adhoc_ran") != ran:  # run once per statement and data version, not on every rerun
        st.session_state["_adhoc_ran"] = ran
        st.session_state["_adhoc"] = st.session_state["_adhoc_error"] = None
        st.session_state["_adhoc"], st.session_state["_adhoc_error"] = _run(sql, raw)
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
    exports(result.data, "adhoc", key="adhoc", reasons=result.reasons, query="adhoc", raw=result.raw)
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
