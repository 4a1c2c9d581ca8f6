"""A bounded load run on loopback (tests/load_tools.py): browser sessions across admin, all-site director and
one-site director while an analyst's heavy ad-hoc SQL is stopped at its limit again and again; no session may
fail. Short by default (6 sessions for 20 s); LOAD_SESSIONS and LOAD_SECONDS set the full run (25 and 120).
Page times, server RSS and threads are printed and written to benchmarks/results/load.json, never asserted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import load_tools
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not os.path.exists(load_tools.CHROMIUM), reason="needs Debian chromium")


def _save(name: str, figures: dict) -> None:
    print(json.dumps(figures, indent=1))
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    if os.environ.get("LOAD_SESSIONS"):  # only the full run's figures are kept
        out.write_text(json.dumps(figures, indent=1) + "\n")


def test_sessions_across_roles_while_heavy_sql_runs(demo_db_path):
    sessions = int(os.environ.get("LOAD_SESSIONS") or 6)
    seconds = float(os.environ.get("LOAD_SECONDS") or 20)
    figures = load_tools.load(demo_db_path, sessions, seconds)
    _save("load", figures)
    assert figures["failed_sessions"] == 0, figures["failures"]
    assert figures["pages_loaded"] >= sessions  # every session loaded at least one page
    assert figures["adhoc_runs"] >= 1
    assert all(m.startswith("Stopped after ") and "limit 2 s" in m for m in figures["adhoc_messages"])
    assert figures["server_after"]["workers"] <= 2  # killed workers are replaced, never piled up


def test_director_page_time_with_heavy_sql(demo_db_path):
    figures = load_tools.director_under_heavy_sql(demo_db_path, repeats=int(os.environ.get("LOAD_REPEATS") or 4))
    _save("load-director", figures)
    assert figures["heavy_statements"] >= 1 and len(figures["heavy_s"]) == len(figures["quiet_s"])
