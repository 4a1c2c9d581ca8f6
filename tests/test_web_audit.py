"""The app's side of the audit log and of ad-hoc SQL (AppTest, real sandbox workers, real log file): ad-hoc
statements run in a worker and are logged before and after; catalog runs logged once per distinct run;
downloads logged with the SHA-256 of the bytes served; a site outside the user's scope is a logged denial."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from apptest_tools import AUTH
from streamlit.testing.v1 import AppTest

from outcomes.privacy import audit, audit_verify

ROOT = Path(__file__).resolve().parents[1]
ROLES = """
[users."north@example.org"]
role = "director"
sites = ["Northside"]

[users."analyst@example.org"]
role = "analyst"
sites = "*"
"""
NORTH = {"is_logged_in": True, "email": "north@example.org", "email_verified": True}
ANALYST = {"is_logged_in": True, "email": "analyst@example.org", "email_verified": True}
HEAVY = "select len(list_sort(list_reverse(range(20000000))))"
HUGE = "select sum(len(l)) from (select list(repeat('x',100000000)) l from range(40))"


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OUTCOMES_AUDIT_LOG", str(path))
    return path


@pytest.fixture
def app(demo_db_path, tmp_path, monkeypatch, log):
    """app(user, page, **query_params) -> AppTest after its first run (user None: local mode, the local admin)."""
    import streamlit as st

    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    monkeypatch.setenv("OUTCOMES_SQL_TIMEOUT", "2")
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES)

    def _open(user: dict | None, page: str, **query_params) -> AppTest:
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        if user is not None:
            at.secrets = {"auth": AUTH, "roles_file": str(roles)}
            at.user = user
        for k, v in query_params.items():
            at.query_params[k] = v
        at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


def events(log: Path, kind: str, **match) -> list[dict]:
    return [e for e in audit.read(log) if e["event"] == kind and all(e.get(k) == v for k, v in match.items())]


def test_adhoc_runs_in_a_worker_is_stopped_and_the_next_statement_works(app, log):
    at = app(ANALYST, "pages/explore.py")
    started = time.monotonic()
    at.text_area(key="adhoc_sql").input(HEAVY).run()
    took = time.monotonic() - started
    assert took < 2 + 2 + 3, took  # limit + 2 s, plus the AppTest rerun itself
    [error] = [e.value for e in at.error]
    # the time limit or the memory cap, whichever the worker reaches first on a busy machine
    assert (
        error.startswith("Stopped after ") and ", limit 2 s." in error or "used more than the memory limit" in error
    ) and error.endswith("The next statement runs as usual."), error
    assert "\n" not in error
    at.text_area(key="adhoc_sql").input("select 5.0 as five, 12 as twelve, 'Northside' as site").run()
    assert not at.error, [e.value for e in at.error]
    shown = at.dataframe[-1].value
    # a float holding a whole number 1-10 is a small count; 12 is shown; text stays text
    assert shown[["five", "twelve", "site"]].iloc[0].tolist() == ["too few", "12", "Northside"]
    adhoc = events(log, "adhoc_sql")
    first, done = adhoc[0], adhoc[1]
    assert (first["outcome"], first["sql"], first["sql_sha256"]) == ("started", HEAVY, audit.sha256(HEAVY))
    assert first["user"] == "analyst@example.org" and first["sites"] == "*" and first["role"] == "analyst"
    assert (
        done["run"] == first["run"]
        and done["outcome"] in ("timeout", "killed", "memory")
        and done.get("seconds", 0) < 3.5
    )
    last = adhoc[-1]
    assert (last["outcome"], last["rows"], last["suppressed"], last["raw"]) == ("ok", 1, 1, False)
    assert audit_verify.verify(log).ok


def test_adhoc_over_the_memory_limit_says_so_in_one_line(app, log, demo_db):
    at = app(ANALYST, "pages/explore.py")
    at.text_area(key="adhoc_sql").input(HUGE).run()
    [error] = [e.value for e in at.error]
    assert ("used more than the memory limit" in error or error.startswith("Stopped after ")) and "\n" not in error
    at.text_area(key="adhoc_sql").input("select count(*) as episodes from episodes").run()
    [[episodes]] = demo_db.execute("select count(*) from episodes").fetchall()
    assert not at.error and at.dataframe[-1].value["episodes"].iloc[0] == f"{episodes:,}"
    outcomes = [e["outcome"] for e in events(log, "adhoc_sql")]
    assert outcomes[:2] == ["started", outcomes[1]] and outcomes[1] in ("memory", "killed", "timeout")
    assert outcomes[-2:] == ["started", "ok"]


def test_raw_values_are_for_the_admin_only(app, log):
    analyst = app(ANALYST, "pages/explore.py")
    analyst.text_area(key="adhoc_sql").input("select 5.0 as five").run()
    assert not analyst.toggle and analyst.dataframe[-1].value["five"].iloc[0] == "too few"
    admin = app(None, "pages/explore.py")  # local mode: the local admin
    admin.text_area(key="adhoc_sql").input("select 5.0 as five").run()
    assert admin.dataframe[-1].value["five"].iloc[0] == "too few"
    admin.toggle(key="adhoc_raw").set_value(True).run()
    assert float(admin.dataframe[-1].value["five"].iloc[0]) == 5.0
    assert events(log, "adhoc_sql", outcome="ok")[-1]["raw"] is True


def test_page_panels_are_logged_once_per_distinct_run(app, log):
    at = app(NORTH, "pages/stepdown.py")
    first = events(log, "query_run")
    assert first and {e["query"] for e in first} >= {"stepdown_rate"}
    assert all(e["user"] == "north@example.org" and e["sites"] == ["Northside"] for e in first)
    one = next(e for e in first if e["query"] == "stepdown_rate")
    assert isinstance(one["rows"], int) and one["rows"] > 0 and isinstance(one["suppressed"], int)
    assert "population" not in {e["query"] for e in first}
    at.run()
    at.run()
    assert len(events(log, "query_run")) == len(first)  # reruns are not new runs
    at.date_input(key="start").set_value("2024-01-01").run()
    again = events(log, "query_run")[len(first) :]
    assert again and all(e["params"].get("start") == "2024-01-01" for e in again)


def test_explore_run_and_parameter_change_are_logged(app, log):
    at = app(NORTH, "pages/explore.py", q="stepdown_rate")
    runs = events(log, "query_run", query="stepdown_rate")
    assert len(runs) == 1 and runs[0]["page"] == "explore"
    at.number_input(key="stepdown_rate.window_days").set_value(28).run()
    runs = events(log, "query_run", query="stepdown_rate")
    assert len(runs) == 2 and runs[1]["params"]["window_days"] == 28


def test_downloads_log_the_hash_of_the_bytes_served(app, log, downloads):
    at = app(NORTH, "pages/explore.py", q="stepdown_rate")
    served = {}
    for button in at.download_button:
        body = downloads[button.proto.deferred_file_id]()
        served[button.label] = body
    exports = events(log, "export")
    assert len(exports) == 3  # CSV, Excel, Parquet: one event per file made
    for e in exports:
        body = served[{"csv": "Download CSV", "xlsx": "Download Excel", "parquet": "Download Parquet"}[e["format"]]]
        assert isinstance(body, bytes)
        assert e["sha256"] == hashlib.sha256(body).hexdigest() and e["bytes"] == len(body)
        assert e["query"] == "stepdown_rate" and e["user"] == "north@example.org" and isinstance(e["rows"], int)
    assert {e["format"] for e in exports} == {"csv", "xlsx", "parquet"}


def test_a_site_outside_scope_is_denied_logged_and_said(app, log):
    at = app(NORTH, "pages/stepdown.py", sites="Riverside")
    assert any(w.value.startswith("Riverside is not available to you") for w in at.warning), [
        w.value for w in at.warning
    ]
    [denied] = events(log, "denied")
    assert denied["requested"] == ["Riverside"] and denied["allowed"] == ["Northside"]
    assert denied["user"] == "north@example.org" and denied["reason"] == "site outside scope"
    at.run()
    assert len(events(log, "denied")) == 1  # once per session, not per rerun
    assert all(e["sites"] == ["Northside"] for e in events(log, "query_run"))
