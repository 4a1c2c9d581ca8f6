"""The benchmark runs end to end at a small scale, in a real browser too, and its baselines (DuckDB from the base
tables, Polars, pandas) give the catalog's rows.

No timing is asserted: the numbers depend on the machine. The full run is `python -m outcomes bench`.
"""

from __future__ import annotations

import json
import os

import pytest

from outcomes.bench import harness as bench
from outcomes.bench import report
from outcomes.catalog.query import load_catalog


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    return bench.run(
        clients=2000,
        runs=2,
        json_path=tmp / "bench-2000.json",
        workdir=tmp / "work",
        progress=lambda message: None,
        port=int(os.environ.get("BENCH_PORT", "0")) or None,  # default: a free port
        browser_options={"read_seconds": 1},
    )


def test_saves_json_with_machine_details(result):
    saved = json.loads(open(result["json_path"]).read())
    assert saved["clients"] == 2000 and saved["runs"] == 2 and saved["complete"]
    machine = saved["machine"]
    for key in ("cores", "memory_mb", "cpu", "python", "duckdb", "pandas", "streamlit", "load_average"):
        assert machine[key], key
    assert len(machine["load_average"]) == 3
    assert saved["rows"]["clients"] == 2000 and saved["rows"]["attendance"] > 0


def test_times_generation_load_and_memory(result):
    assert result["generate"]["seconds"] > 0 and result["generate"]["peak_rss_mb"] > 0
    assert result["load"]["seconds"] > 0 and result["load"]["peak_rss_mb"] > 0
    assert "checking rules" in result["load"]["phases"]
    assert result["serving_peak_rss_mb"] > 0


def test_every_catalog_query_is_timed_with_defaults_and_filters(result):
    timed = {q["name"]: q for q in result["queries"]}
    assert set(timed) == set(load_catalog())
    for name, q in timed.items():
        assert q.get("default_ms") is not None and q.get("filtered_ms") is not None, (name, q)
    assert timed["stepdown_rate"]["filtered_params"]["sites"] and timed["stepdown_rate"]["filtered_params"]["start"]


def test_every_page_is_timed(result):
    pages = {p["page"] for p in result["pages"]}
    assert pages == {p.relative_to(bench.ROOT).as_posix() for p in bench.PAGES_DIR.glob("*.py")}
    for page in result["pages"]:
        assert page["first_ms"] > 0 and page["cached_ms"] > 0, page
        assert not page["problems"], page
    director = [p for p in result["pages"] if p["page"] in ("pages/stepdown.py", "pages/overview.py")]
    assert len(director) == 2
    for page in director:  # a change of sites, nothing made ahead, then with the views made ahead
        assert page["filter_change_ms"] > 0 and page["filter_change_ahead_ms"] > 0 and page["ahead_seconds"] >= 0


def test_load_and_first_render_are_medians(result):
    assert len(result["load"]["runs_seconds"]) == 2
    assert min(result["load"]["runs_seconds"]) <= result["load"]["seconds"] <= max(result["load"]["runs_seconds"])
    assert result["machine"]["cpu"] and len(result["machine"]["load_average_end"]) == 3


def test_every_baseline_equals_the_catalog(result):
    measures = result["ratios"]["measures"]
    assert {(m["name"], m["params"]) for m in measures} == {
        (name, label) for name in ("stepdown_rate", "engagement_by_week") for label in ("default", "filtered")
    }
    assert set(result["ratios"]["engines"]) == {"duckdb_base", "polars", "pandas"}
    for m in measures:
        for engine in ("duckdb_base", "polars", "pandas"):
            assert m[f"{engine}_equal"], (engine, m)
            assert m[f"{engine}_ms"] > 0
        assert m["served_ms"] > 0 and m["pandas_over_duckdb_base"] is not None


def test_browser_times_every_page(result):
    b = result["browser"]
    assert b["rounds"] == 2 and b["server_start_s"] > 0 and not b["problems"], b["problems"]
    paths = {p["page"] for p in b["pages"]}
    assert {"overview", "stepdown", "engagement", "retention", "pathways"} <= paths
    for p in b["pages"]:
        assert p["first_visit_ms"] > 0 and p["second_visit_ms"] > 0 and p["shared_link_ms"] > 0, p
    director = [p for p in b["pages"] if p["page"] in ("overview", "stepdown", "engagement", "retention")]
    assert all(p["filter_change_ms"] > 0 and p["filter_change_ahead_ms"] > 0 for p in director)
    assert b["after_start_ms"] == b["pages"][0]["first_visit_ms"]
    assert b["pdf"]["first_ms"] > 0 and b["pdf"]["second_ms"] > 0
    assert b["first_start"]["seconds"] > 0 and b["first_start"]["progress_shown"]


def test_targets_and_summary(result):
    assert set(result["targets"]) == set(bench.TARGETS)
    text = bench.summary(result)
    for name in ("stepdown_rate", "engagement_by_week", "pages/stepdown.py", "load + validate", "Polars"):
        assert name in text
    table = report.browser_table(result)
    assert table[0].startswith("| page |") and len(table) >= 2 + len(result["browser"]["pages"])
    assert len(report.ratios_table(result)) == 2 + len(result["ratios"]["measures"])
