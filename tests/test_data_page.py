"""The Data page: upload the four extracts, see the validation report, publish only when valid (admins only)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
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
        at.secrets = {"auth": {"client_id": "id"}, "roles_file": str(roles)}
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
    report = at.dataframe[-1].value
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
    assert at.dataframe[-1].value["rule"].tolist() == ["unknown-file"]
    at.file_uploader(key="uploads").set_value(_files()[:2])
    at.run()
    at.button(key="publish").click().run()
    assert sorted(at.dataframe[-1].value["rule"]) == ["missing-file", "missing-file"]
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
