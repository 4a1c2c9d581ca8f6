"""A fresh clone with no database builds the demo database on first start, then serves it."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from outcomes.ingest import db
from outcomes.web import database

ROOT = Path(__file__).resolve().parents[1]


def test_first_start_builds_demo_database(tmp_path, monkeypatch):
    import streamlit as st

    target = tmp_path / "data" / "outcomes.duckdb"
    monkeypatch.delenv("OUTCOMES_DB", raising=False)
    monkeypatch.setattr(db, "DEFAULT_DB", target)
    monkeypatch.setattr(database, "DEMO_CLIENTS", 300)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert target.exists()
    con = db.connect(target)
    assert con.execute("select count(*) from clients").fetchone()[0] == 300
    con.close()
    assert at.title and any("Data through" in c.value for c in at.sidebar.caption)


def test_missing_database_gives_a_clear_message(tmp_path, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("OUTCOMES_DB", str(tmp_path / "nowhere.duckdb"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.run()
    assert not at.exception
    assert any("No database is loaded" in e.value for e in at.error)
