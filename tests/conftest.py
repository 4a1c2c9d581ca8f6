"""Shared fixtures: databases built by the real loader from fixture folders, and a query helper."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from outcomes.catalog import runner
from outcomes.catalog.query import load_catalog
from outcomes.ingest import db
from outcomes.ingest.loader import load

ROOT = Path(__file__).resolve().parents[1]
# No background case-mix fits of each new database (outcomes/web/warm.py): the suite builds hundreds, and their
# fits would only compete with the tests for the two cores. tests/test_casemix.py turns them on where it tests them.
os.environ.setdefault("OUTCOMES_WARM_FITS", "0")
os.environ.setdefault("OUTCOMES_LOAD_FITS", "0")  # hundreds of test loads; tests/test_casemix.py fits at load
os.environ.setdefault("OUTCOMES_PREFETCH", "0")  # nor views made ahead for other sites; tests/test_prefetch.py
FIXTURES = ROOT / "tests" / "fixtures"
pytest_plugins = ["pg_server"]  # the real PostgreSQL server fixture, for the loader and the Data page

# Markers by module, so that `pytest -m "not browser and not slow"` is the quick loop (under a minute) and the
# README's command runs everything. browser: a real Chromium against a real server; slow: servers, pages,
# property tests or large data; spark and postgres: those engines (also slow).
MODULE_MARKS = {
    "test_browser": ("browser",),
    "test_a11y_browser": ("browser",),
    "test_concurrency": ("browser", "slow"),
    "test_bench": ("browser", "slow"),
    "test_serving": ("browser", "slow"),
    "test_load": ("browser", "slow"),
    "test_spark_build": ("spark", "slow"),
    "test_pg_source": ("postgres", "slow"),
    **{
        name: ("slow",)
        for name in (
            "test_access",
            "test_adhoc",
            "test_analyst_pages",
            "test_cache",
            "test_casemix",
            "test_casemix_pages",
            "test_chart_marks",
            "test_data_page",
            "test_digest",
            "test_director_pages",
            "test_export_safety",
            "test_first_start",
            "test_fuzz",
            "test_kpi_periods",
            "test_loader_scale",
            "test_pages",
            "test_language_pages",
            "test_sandbox",
            "test_sandbox_fuzz",
            "test_suppression",
            "test_upload_safety",
            "test_audit_chain",
            "test_measure_consistency",
            "test_web_audit",
        )
    },
}


# Single slow tests in otherwise quick modules: a 20,000-client demo, an integer-program cross-check, the CLI in
# its own processes, `check` building its demo and golden databases.
SLOW_TESTS = {
    "test_killed_load_leaves_old_database_serving",
    "test_the_walk_agrees_with_milp_on_the_discharge_sums",
    "test_update_golden_writes_every_file_and_check_then_passes",
    "test_csv_holds_the_same_data_and_replaces_parquet",
    "test_check_passes_a_good_folder_once_its_golden_output_is_written",
    "test_check_names_the_file_and_the_problem",
    "test_check_all_passes_on_demo_data",
    "test_signals_command",
    "test_lake_load_equals_the_csv_load",
    "test_sql_style",
}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        marks = set(MODULE_MARKS.get(module, ()))
        if module == "test_cli" or item.originalname in SLOW_TESTS:
            marks.add("slow")
        for mark in sorted(marks):
            item.add_marker(getattr(pytest.mark, mark))


@pytest.fixture(scope="session", autouse=True)
def full_error_details():
    """.streamlit/config.toml hides error details from viewers; tests need them to say what failed."""
    from streamlit import config

    config.set_option("client.showErrorDetails", "full")
    # as .streamlit/config.toml sets it (tests/test_deploy.py checks the file), whatever folder pytest runs from:
    # unset, the app refuses to serve without login
    config.set_option("server.address", "127.0.0.1")


@pytest.fixture(scope="session", autouse=True)
def audit_log(tmp_path_factory):
    """Every test, and any server a test starts, writes audit events here rather than to data/audit.jsonl."""
    path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OUTCOMES_AUDIT_LOG", str(path))
        yield path


@pytest.fixture
def downloads(monkeypatch):
    """The callables behind deferred download buttons, by file id: calling one is what a click does."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    made = {}
    original = MediaFileManager.add_deferred

    def add_deferred(self, func, *args, **kwargs):
        file_id = original(self, func, *args, **kwargs)
        made[file_id] = func
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return made


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
    from outcomes.ingest.demo import generate

    tmp = tmp_path_factory.mktemp("demo")
    generate(tmp / "files", clients=1500, seed=7)
    load(tmp / "files", tmp / "demo.duckdb")
    return tmp / "demo.duckdb"


@pytest.fixture(scope="session")
def demo_db(demo_db_path):
    con = db.connect(demo_db_path)
    yield con
    con.close()


@pytest.fixture
def streamlit_server():
    """streamlit_server(db_path) -> base URL of `streamlit run app.py` on 127.0.0.1 serving that database.

    Each server started is stopped when the test ends. Waits until /_stcore/health answers "ok"."""
    import os
    import socket
    import subprocess
    import sys
    import tempfile
    import time
    import urllib.request

    started = []
    log = tempfile.TemporaryFile()

    def _start(db_path, **env) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=dict(os.environ, OUTCOMES_DB=str(db_path), **env),
            stdout=subprocess.DEVNULL,
            stderr=log,  # a file, not a pipe: a pipe nobody reads fills up and stalls the server
        )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    return url
            except OSError:
                time.sleep(0.3)
            if proc.poll() is not None:
                break
        proc.kill()
        log.seek(0)
        pytest.fail("streamlit did not start: " + log.read().decode(errors="replace")[-2000:])

    yield _start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()
