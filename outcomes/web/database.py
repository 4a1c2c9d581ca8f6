"""The database this server shows: its version, the cached read-only connection, the first-start demo, load facts and filter options."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import streamlit as st

from outcomes.catalog.query import Query, load_catalog
from outcomes.ingest import db

DEMO_CLIENTS = 3000


def db_path() -> Path:
    """The database this server shows: $OUTCOMES_DB, else data/outcomes.duckdb (read per call, not at import)."""
    return Path(os.environ.get("OUTCOMES_DB") or db.DEFAULT_DB)


@st.cache_resource(show_spinner=False)
def catalog() -> dict[str, Query]:
    return load_catalog()


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
            generate(folder, clients=DEMO_CLIENTS, seed=42,
                     progress=lambda f, m: bar.progress(min(f, 1.0) * 0.5, text=f"generating: {m}"))
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


def run_version() -> db.DataVersion:
    """The data version this script run started with (pinned by sidebar_filters), so a reload during a run
    cannot mix two versions on one page; the current version when nothing is pinned."""
    return st.session_state.get("_data_version") or data_version()


def connection():
    return root_connection(run_version())


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
    cur = root_connection(version)
    return db.load_info(cur)
