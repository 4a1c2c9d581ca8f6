"""The benchmark runs end to end at a small scale and its pandas baseline gives the same rows as DuckDB.

No timing is asserted: the numbers depend on the machine. The full run is `python -m outcomes bench`.
"""

from __future__ import annotations

import json

import pytest

from outcomes.bench import harness as bench
from outcomes.catalog.query import load_catalog


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    return bench.run(
        clients=2000, runs=2, json_path=tmp / "bench-2000.json", workdir=tmp / "work", progress=lambda message: None
    )


def test_saves_json_with_machine_details(result):
    saved = json.loads(open(result["json_path"]).read())
    assert saved["clients"] == 2000 and saved["runs"] == 2
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


def test_pandas_equals_duckdb(result):
    measures = result["pandas"]["measures"]
    assert {(m["name"], m["params"]) for m in measures} == {
        (name, label) for name in ("stepdown_rate", "engagement_by_week") for label in ("default", "filtered")
    }
    for m in measures:
        assert m["equal"], m
        assert m["pandas_ms"] > 0 and m["speedup"] is not None


def test_targets_and_summary(result):
    assert set(result["targets"]) == set(bench.TARGETS)
    text = bench.summary(result)
    for name in ("stepdown_rate", "engagement_by_week", "pages/stepdown.py", "load + validate"):
        assert name in text
