"""The Data page: upload the four extracts, see the validation report, publish only when valid (admins only)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from apptest_tools import AUTH
from streamlit.testing.v1 import AppTest

from outcomes.ingest import db, uploads
from outcomes.ingest.problems import Problem
from outcomes.privacy import audit

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ROOT / "tests" / "fixtures" / "headline"


@pytest.fixture
def live(demo_db_path, tmp_path, monkeypatch):
    """A copy of the demo database served as the live one (the page replaces it)."""
    import streamlit as st

    path = tmp_path / "live" / "outcomes.duckdb"
    path.parent.mkdir()
    shutil.copy(demo_db_path, path)
    monkeypatch.setenv("OUTCOMES_DB", str(path))
    monkeypatch.setenv("OUTCOMES_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield path
    st.cache_resource.clear()  # close connections to the temporary files


def _page(user: dict | None = None, roles: Path | None = None) -> AppTest:
    # The page script on its own: reached through app.py with switch_page, AppTest first runs it in Streamlit's
    # legacy pages/ mode, and ui.page's rerun out of that mode drops a button click.
    at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=120)
    if user:
        at.secrets = {"auth": AUTH, "roles_file": str(roles)}
        at.user = user
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _files(folder: Path = HEADLINE, **replace: bytes) -> list[tuple[str, bytes, str]]:
    names = ("clients.csv", "enrollments.csv", "attendance.csv", "transitions.csv")
    return [(n, replace.get(n.removesuffix(".csv"), (folder / n).read_bytes()), "text/csv") for n in names]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_good_files_are_published_and_served(live, tmp_path):
    before = db.DataVersion.of(live)
    at = _page()
    assert at.button(key="publish").disabled
    at.file_uploader(key="uploads").set_value(_files())
    at.date_input(key="as_of").set_value("2025-06-30")
    at.run()
    at.button(key="publish").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
    assert any(s.value.startswith("Published: clients") for s in at.success)
    assert db.DataVersion.of(live) != before
    con = db.connect(live)
    try:
        clients = con.execute("select count(*) from clients").fetchone()[0]
        assert clients == len((HEADLINE / "clients.csv").read_text().splitlines()) - 1
        assert str(con.execute("select data_through from load_info").fetchone()[0]) == "2025-06-30"
    finally:
        con.close()
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()  # every page serves the new version
    assert any("30 Jun 2025" in c.value for c in app.sidebar.caption)
    event = [e for e in audit.read(tmp_path / "audit.jsonl") if e["event"] == "data_load"][-1]
    assert event["outcome"] == "published" and event["problems"] == 0 and event["tables"]["clients"] == clients


def test_bad_files_show_the_report_and_change_nothing(live, tmp_path):
    before, digest = db.DataVersion.of(live), _digest(live)
    enrollments = (HEADLINE / "enrollments.csv").read_text().splitlines()
    broken = "\n".join([enrollments[0] + ",ssn"] + [line + ",123-45-6789" for line in enrollments[1:]]) + "\n"
    at = _page()
    at.file_uploader(key="uploads").set_value(_files(enrollments=broken.encode()))
    at.run()
    at.button(key="publish").click().run()
    assert not at.exception
    assert any(e.value.startswith("Not published: 1 problem(s)") for e in at.error)
    report = at.dataframe[0].value
    assert list(report.columns) == ["file", "line", "column", "rule", "message"]
    assert report.iloc[0][["file", "column", "rule"]].tolist() == ["enrollments.csv", "ssn", "privacy"]
    assert db.DataVersion.of(live) == before and _digest(live) == digest
    assert "123-45-6789" not in (tmp_path / "audit.jsonl").read_text()
    event = [e for e in audit.read(tmp_path / "audit.jsonl") if e["event"] == "data_load"][-1]
    assert (event["outcome"], event["problems"]) == ("refused", 1)


def test_wrong_and_missing_files_are_reported(live):
    digest = _digest(live)
    at = _page()
    files = _files()[:2] + [("notes.csv", b"a\n1\n", "text/csv")]
    at.file_uploader(key="uploads").set_value(files)
    at.run()
    at.button(key="publish").click().run()
    assert at.dataframe[0].value["rule"].tolist() == ["unknown-file"]
    at.file_uploader(key="uploads").set_value(_files()[:2])
    at.run()
    at.button(key="publish").click().run()
    assert sorted(at.dataframe[0].value["rule"]) == ["missing-file", "missing-file"]
    assert _digest(live) == digest


def test_upload_limit_is_checked_in_code():
    limit = uploads.DEFAULT_LIMIT_MB
    assert uploads.check([("clients.csv", limit * 1024 * 1024)], limit) == []
    [problem] = uploads.check([("Clients.CSV", limit * 1024 * 1024 + 1)], limit)
    assert problem.rule == "too-large" and f"limit of {limit} MB" in problem.message
    assert [p.rule for p in uploads.check([("clients.csv", 1), ("clients.parquet", 1), ("../x.csv", 1)])] == [
        "unknown-file"
    ]
    assert [p.rule for p in uploads.check([("clients.csv", 1), ("CLIENTS.csv", 1)])] == ["duplicate-file"]
    assert isinstance(uploads.check([("x.txt", 1)])[0], Problem)


def test_uploads_are_saved_under_contract_names(tmp_path):
    import io

    uploads.save([("Clients.CSV", io.BytesIO(b"client_id\n"))], tmp_path)
    assert (tmp_path / "clients.csv").read_bytes() == b"client_id\n"
    with pytest.raises(ValueError):
        uploads.save([("../../etc/passwd", io.BytesIO(b""))], tmp_path)


def test_non_admin_is_not_authorised(live, tmp_path):
    roles = tmp_path / "roles.toml"
    roles.write_text('[users."d@example.org"]\nrole = "director"\nsites = "*"\n')
    at = _page({"is_logged_in": True, "email": "d@example.org"}, roles)
    assert any("Not authorised" in e.value for e in at.error)
    assert not at.file_uploader and "publish" not in [b.key for b in at.button]


# --- uploads in a child process, the refused loads, the audit log's state ----------------------------------------


def test_malformed_upload_is_refused_in_the_child_and_listed(live, tmp_path):
    clients = (HEADLINE / "clients.csv").read_bytes().split(b"\n")
    clients[0] = clients[0].replace(b",", b"\r,", 1)  # a bare CR in a header name (an uncaught csv.Error once)
    bad = b"\n".join(clients)
    digest = _digest(live)
    at = _page()
    at.file_uploader(key="uploads").set_value(_files(clients=bad))
    at.run()
    at.button(key="publish").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(e.value.startswith("Not published:") for e in at.error)
    report = at.dataframe[0].value
    assert report["file"].tolist()[0] == "clients.csv" and "bad-header" in report["rule"].tolist()
    assert _digest(live) == digest
    listed = at.dataframe[-1].value  # the refused loads, newest first
    assert listed.iloc[0]["problems"] >= 1 and "bad-header" in listed.iloc[0]["rules"]
    assert hashlib.sha256(bad).hexdigest()[:12] in listed.iloc[0]["source"]
    entry = uploads.refused_loads(tmp_path / "refused-loads.jsonl")[0]
    assert entry["by_file"]["clients.csv"]["bad-header"] >= 1
    again = _page()  # the server carries on: the next run serves the data as before
    assert not again.error and any("Serving data through" in c.value for c in again.caption)


def test_audit_log_state_ok_then_broken_at_the_line(live, tmp_path):
    log = tmp_path / "audit.jsonl"
    at = _page()
    assert any(s.value.startswith("audit log OK:") for s in at.success), [s.value for s in at.success]
    lines = log.read_bytes().split(b"\n")
    assert len([x for x in lines if x]) >= 1
    for n in range(3):
        audit.write("page_view", f"user{n}", log, page="data")
    lines = log.read_bytes().split(b"\n")
    n = next(i for i, line in enumerate(lines) if b'"user1"' in line)
    lines[n] = lines[n].replace(b'"user1"', b'"someone"')  # edit one line in the middle
    log.write_bytes(b"\n".join(lines))
    at.button(key="audit-verify").click().run()
    [error] = [e.value for e in at.error]
    assert error.startswith(f"Audit log BROKEN at audit.jsonl line {n + 1}:"), error


def test_no_refused_loads_says_so(live):
    at = _page()
    assert any(c.value == "No load has been refused." for c in at.caption)


@pytest.mark.postgres
def test_admin_loads_from_the_configured_postgresql(live, tmp_path, server):
    import duckdb

    at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=120)
    at.secrets = {"postgres": {"url": server.url("good")}}
    at.run()
    assert not at.exception
    at.date_input(key="as_of").set_value("2025-06-30").run()
    at.button(key="publish-postgres").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
    assert any(s.value.startswith("Published: clients") for s in at.success), [s.value for s in at.success]
    expected = tmp_path / "csv.duckdb"
    from outcomes.ingest.loader import load

    load(HEADLINE, expected, __import__("datetime").date(2025, 6, 30))
    con = duckdb.connect(str(live), read_only=True)
    try:
        con.execute(f"attach '{expected}' as csv (read_only)")
        for table in ("clients", "enrollments", "attendance", "transitions", "episodes"):
            diff = con.execute(
                f"select count(*) from ((select * from {table} except all select * from csv.{table}) "
                f"union all (select * from csv.{table} except all select * from {table}))"
            ).fetchone()[0]
            assert diff == 0, table
    finally:
        con.close()
    event = [e for e in audit.read(tmp_path / "audit.jsonl") if e["event"] == "data_load"][-1]
    assert event["outcome"] == "published" and event["params"]["source"] == server.url("good")


@pytest.mark.postgres
def test_postgresql_problems_get_the_same_report(live, tmp_path, server):
    digest = _digest(live)
    at = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=120)
    at.secrets = {"postgres": {"url": server.url("nowhere")}}
    at.run()
    at.button(key="publish-postgres").click().run()
    assert not at.exception
    assert any(e.value.startswith("Not published: 4 problem(s)") for e in at.error), [e.value for e in at.error]
    assert set(at.dataframe[0].value["rule"]) == {"missing-table"}
    assert _digest(live) == digest
    assert uploads.refused_loads(tmp_path / "refused-loads.jsonl")[0]["source"] == server.url("nowhere")
    at.secrets = {"postgres": {"url": server.url("good").replace("postgres@", "postgres:pw@")}}
    at.run()
    at.button(key="publish-postgres").click().run()
    assert any("holds a password" in m for m in at.dataframe[0].value["message"])
