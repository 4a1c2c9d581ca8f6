"""Shared fixtures: databases built by the real loader from fixture folders, and a query helper."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from outcomes import db, runner
from outcomes.catalog import load_catalog
from outcomes.loader import load

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def build_db(tmp_path_factory):
    """build_db("headline", "2025-06-30") -> read-only connection to that fixture folder, loaded once per session."""
    built = {}

    def _build(folder: str, as_of: str | None = None):
        key = (folder, as_of)
        if key not in built:
            path = tmp_path_factory.mktemp("db") / f"{folder}.duckdb"
            load(FIXTURES / folder, path, dt.date.fromisoformat(as_of) if as_of else None)
            built[key] = db.connect(path)
        return built[key]

    yield _build
    for con in built.values():
        con.close()


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture(scope="session")
def run_query(catalog):
    """run_query(con, "name", raw=True, **params) -> DataFrame."""

    def _run(con, name: str, raw: bool = True, **params):
        return runner.run(con, catalog[name], params, raw=raw).data

    return _run


@pytest.fixture(scope="session")
def demo_db_path(tmp_path_factory) -> Path:
    """A small demo database (1,500 clients) built by the real generator and loader; shared by the suite."""
    from outcomes.demo import generate

    tmp = tmp_path_factory.mktemp("demo")
    generate(tmp / "files", clients=1500, seed=7)
    load(tmp / "files", tmp / "demo.duckdb")
    return tmp / "demo.duckdb"


@pytest.fixture(scope="session")
def demo_db(demo_db_path):
    con = db.connect(demo_db_path)
    yield con
    con.close()
