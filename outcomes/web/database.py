"""The database this server shows: its version, the cached read-only connection, the first-start demo, the
load facts, the filter options and the query catalog (picked up again when a file in queries/ changes)."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import streamlit as st

from outcomes.catalog.query import Query, check_catalog
from outcomes.ingest import db
from outcomes.paths import QUERY_DIR

DEMO_CLIENTS = 3000


def db_path() -> Path:
    """The database this server shows: $OUTCOMES_DB, else data/outcomes.duckdb (read per call, not at import)."""
    return Path(os.environ.get("OUTCOMES_DB") or db.DEFAULT_DB)


_seen: dict = {}  # folder -> the catalog as last read from it


def catalog() -> dict[str, Query]:
    """The catalog as the files in queries/ are now: a new or edited file shows without a restart."""
    _seen[QUERY_DIR] = read = _catalog(QUERY_DIR, _stamp(QUERY_DIR))[0]
    return read


def catalog_seen() -> dict[str, Query]:
    """The catalog as a script run last read it (or as it is now, before any has), for the threads that run a
    run's queries. Reading queries/ takes a system call per file, and on a busy server each call can wait
    milliseconds to get the interpreter lock back: one reading took up to 100 ms of a query thread at 1M."""
    seen = _seen.get(QUERY_DIR)
    return seen if seen is not None else catalog()


def catalog_problems() -> list[str]:
    """One line per query file that does not parse (left out of the catalog until it is fixed)."""
    return _catalog(QUERY_DIR, _stamp(QUERY_DIR))[1]


def _stamp(folder: Path) -> tuple:
    # names, sizes and modification times: a few microseconds per file, so every run can ask
    return tuple(
        sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(folder) if e.name.endswith(".sql"))
    )


@st.cache_resource(max_entries=4, show_spinner=False)
def _catalog(folder: Path, stamp: tuple) -> tuple[dict[str, Query], list[str]]:
    good, problems = check_catalog(folder)
    for problem in problems:
        logging.getLogger(__name__).error("catalog: %s", problem)
    return good, problems


@st.cache_resource(max_entries=2, show_spinner=False, on_release=lambda con: con.close())
def root_connection(version: db.DataVersion):
    # One read-only root connection per published file; queries use a fresh cursor each.
    return db.open_version(version)


def _build_demo(path: Path) -> None:
    from outcomes.ingest.demo import generate
    from outcomes.ingest.loader import load

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several first visitors: one builds, the others wait
        if path.exists():
            return
        with st.status("First start: building the demo database…", expanded=True) as status:
            bar = st.progress(0.0)
            folder = path.parent / "demo"
            generate(
                folder,
                clients=DEMO_CLIENTS,
                seed=42,
                progress=lambda f, m: bar.progress(min(f, 1.0) * 0.5, text=f"generating: {m}"),
            )
            load(folder, path, progress=lambda f, m: bar.progress(0.5 + min(f, 1.0) * 0.5, text=f"loading: {m}"))
            status.update(label="Demo database ready", state="complete", expanded=False)


def data_version() -> db.DataVersion:
    """The published database's version; builds the demo on a fresh clone, or stops the page with a message."""
    path = db_path()
    if not path.exists() and path == db.DEFAULT_DB:
        _build_demo(path)
    try:
        return db.DataVersion.of(path)
    except db.NoDatabase:
        st.error(f"No database is loaded at `{path}`. Load one with `python -m outcomes load FOLDER`.")
        st.stop()


@st.cache_data(show_spinner=False)
def options(version: db.DataVersion) -> dict[str, list[str]]:
    cur = root_connection(version).cursor()
    try:
        rows = cur.execute("select filter, value from filter_options order by filter, value").fetchall()
    finally:
        cur.close()
    out: dict[str, list[str]] = {}
    for f, v in rows:
        out.setdefault(f, []).append(v)
    return out


@st.cache_data(show_spinner=False)
def info(version: db.DataVersion) -> dict:
    return db.load_info(root_connection(version))
