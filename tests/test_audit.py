"""The audit log: events and their fields, never result rows, append-only, whole lines under concurrent writers."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pandas as pd
import pytest
from apptest_tools import AUTH
from streamlit.testing.v1 import AppTest

from outcomes.catalog import runner
from outcomes.privacy import audit

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {"time", "event", "user", "page", "query", "params", "rows"}


def test_event_has_the_fields():
    record = audit.event(
        "export",
        "a@example.org",
        page="stepdown",
        query="stepdown_rate",
        params={"sites": ["Northside"], "start": dt.date(2025, 1, 1)},
        rows=12,
        file="x.csv",
    )
    assert set(record) >= FIELDS
    assert record["params"] == {"sites": ["Northside"], "start": "2025-01-01"}
    assert (record["event"], record["user"], record["rows"], record["file"]) == ("export", "a@example.org", 12, "x.csv")
    assert dt.datetime.fromisoformat(record["time"]).tzinfo is not None


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame({"client_id": ["C1"]}),
        pd.Series([1, 2]),
        [[1, 2]],
        {"a": [1]},
        list(range(audit.MAX_ITEMS + 1)),
        object(),
    ],
)
def test_tables_and_rows_are_refused(value):
    with pytest.raises(TypeError, match="never tables or rows"):
        audit.event("export", "a", params={"x": value})
    with pytest.raises(TypeError):
        audit.event("export", "a", extra=value)


def test_unknown_event_and_reserved_fields_are_refused():
    with pytest.raises(ValueError):
        audit.event("download", "a")
    with pytest.raises(ValueError):
        audit.event("export", "a", time="now")


def test_append_only_keeps_existing_lines(tmp_path):
    path = tmp_path / "log" / "audit.jsonl"
    path.parent.mkdir()
    path.write_text('{"event":"earlier"}\n')
    audit.write("page_view", "a", path, page="stepdown")
    audit.write("denied", "b", path, page="data", reason="director may not manage_data")
    lines = path.read_text().splitlines()
    assert lines[0] == '{"event":"earlier"}'
    assert [json.loads(x)["event"] for x in lines] == ["earlier", "page_view", "denied"]


def test_new_log_is_private(tmp_path):
    path = tmp_path / "new" / "audit.jsonl"
    audit.write("page_view", "a", path)
    assert path.stat().st_mode & 0o077 == 0  # created 600: only the server's user reads it


def test_concurrent_writers_never_split_a_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    sql = "select " + "x, " * 2000 + "1"  # long lines: each is still one write()

    def writer(n):
        for i in range(50):
            audit.write("adhoc_sql", f"user{n}", path, sql=sql, outcome="ok", rows=i)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = audit.read(path)
    assert len(events) == 400 and all(e["sql"] == sql for e in events)


def test_unwritable_log_raises(tmp_path):
    taken = tmp_path / "audit.jsonl"
    taken.mkdir()  # a folder where the log should be: no write can succeed, even as root
    with pytest.raises(audit.AuditError, match="cannot write the audit log"):
        audit.write("page_view", "a", taken)


def test_log_path_is_read_at_call_time(tmp_path):
    assert audit.log_path(env={}) == audit.DEFAULT_LOG
    assert audit.log_path("logs/a.jsonl", env={}) == ROOT / "logs" / "a.jsonl"
    assert audit.log_path("x", env={"OUTCOMES_AUDIT_LOG": str(tmp_path / "b.jsonl")}) == tmp_path / "b.jsonl"


# --- what the app writes -------------------------------------------------------------------------------------------


@pytest.fixture
def app(demo_db_path, tmp_path, monkeypatch):
    import streamlit as st

    log = tmp_path / "audit.jsonl"
    log.write_text('{"event":"kept"}\n')
    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    monkeypatch.setenv("OUTCOMES_AUDIT_LOG", str(log))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    return at, log


def _values(df: pd.DataFrame) -> set[str]:
    """Result values as a log would spell them, if it held rows: fractions, dates and text."""
    out = set()
    for v in df.to_numpy().ravel():
        if isinstance(v, str) and len(v) > 3:
            out.add(v)
        elif isinstance(v, (dt.date, pd.Timestamp)):
            out.add(v.isoformat()[:10])
        elif isinstance(v, float) and not pd.isna(v) and not v.is_integer():
            out.add(repr(v))
    return out


def test_page_views_exports_and_no_row_data(app, downloads, demo_db, catalog):
    at, log = app
    at.switch_page("pages/stepdown.py").run()
    downloads.clear()
    at.run()  # a rerun with the same filters is not a new view
    at.multiselect(key="sites").set_value(["Riverside"]).run()
    at.multiselect(key="sites").set_value([]).run()
    for button in at.download_button:
        downloads[button.proto.deferred_file_id]()  # what a click makes the server do
    events = audit.read(log)
    assert events[0] == {"event": "kept"}  # existing lines are kept
    views = [e for e in events if e["event"] == "page_view"]
    assert [(v["page"], v["params"]) for v in views] == [
        ("/", {}),
        ("stepdown", {}),
        ("stepdown", {"sites": ["Riverside"]}),
        ("stepdown", {}),
    ]
    assert all(v["user"] == "local" and v["role"] == "admin" and v["sites"] == "*" for v in views)
    exports = [e for e in events if e["event"] == "export"]
    assert len(exports) == len(at.download_button) > 0  # one event per file made
    export = next(e for e in exports if e["query"] == "stepdown_rate")
    assert export["params"] == {"window_days": 14, "grain": "auto"}  # the page asks for grain auto
    assert export["file"].startswith("stepdown_rate_through-") and export["file"].endswith(".csv")
    assert export["sites"] == "*" and export["raw"] is False
    result = runner.run(demo_db, catalog["stepdown_rate"], {"window_days": 14, "grain": "auto"}).data
    assert export["rows"] == len(result) > 0
    # every logged field but the timings and the time of day, whose figures (0.4 s, 18:05:10.412) may hold a
    # rate by chance
    text = "\n".join(json.dumps({k: v for k, v in e.items() if "second" not in k and k != "time"}) for e in events)
    values = _values(result)
    assert len(values) > len(result)  # dates and rates: enough to notice any row in the log
    asked = [v for e in events[1:] for v in (e.get("params") or {}).values()]  # dates asked for, and lists of them
    logged = {json.dumps(x) for v in asked for x in (v if isinstance(v, list) else [v])}
    leaked = [v for v in values if v in text and json.dumps(v) not in logged]
    assert not leaked, leaked
    for e in events[1:]:
        assert set(e) >= FIELDS


def test_adhoc_sql_is_logged_with_text_and_outcome_not_rows(app):
    at, log = app
    at.switch_page("pages/explore.py").run()
    sql = "select site, count(*) as episodes from episodes group by all order by site"
    at.text_area(key="adhoc_sql").input(sql).run()
    at.text_area(key="adhoc_sql").input("drop table episodes").run()
    failing = "select site::integer as n from episodes"  # DuckDB's message quotes the site it could not convert
    at.text_area(key="adhoc_sql").input(failing).run()
    runs = [e for e in audit.read(log) if e["event"] == "adhoc_sql"]
    started, runs = runs[0::2], runs[1::2]  # each statement: logged before it runs, then its outcome
    assert [(e["outcome"], e["sql"]) for e in started] == [
        ("started", sql),
        ("started", "drop table episodes"),
        ("started", failing),
    ]
    assert [e["run"] for e in started] == [e["run"] for e in runs]
    assert [e["outcome"] for e in runs] == ["ok", "refused", "error"]
    assert runs[0]["rows"] == 3 and runs[0]["user"] == "local" and runs[1]["error"]
    assert runs[2]["error"] == "Conversion Error"
    text = log.read_text()
    assert not [site for site in ("Eastgate", "Northside", "Riverside") if site in text]  # the result's rows


@pytest.mark.parametrize("login", [True, False], ids=["login", "local"])
def test_unwritable_log_fails_closed_with_login(demo_db_path, tmp_path, monkeypatch, downloads, login):
    import streamlit as st

    taken = tmp_path / "audit.jsonl"
    taken.mkdir()
    roles = tmp_path / "roles.toml"
    roles.write_text('[users."admin@example.org"]\nrole = "admin"\nsites = "*"\n')
    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    monkeypatch.setenv("OUTCOMES_AUDIT_LOG", str(taken))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if login:
        at.secrets = {"auth": AUTH, "roles_file": str(roles)}
        at.user = {"is_logged_in": True, "email": "admin@example.org"}
    at.run()
    assert not at.exception
    if login:  # nothing is shown that could not be logged
        assert any("audit log cannot be written" in e.value for e in at.error)
        assert not at.get("plotly_chart") and not at.table and not at.dataframe and not at.download_button
    else:  # one local user: warn and carry on
        assert any("audit log could not be written" in w.value for w in at.warning)
        with pytest.raises(audit.AuditError):  # but no file is handed out unlogged
            downloads[at.download_button[0].proto.deferred_file_id]()
