"""Benchmark at a stated scale: demo generation, load, every catalog query, every page (server time and in a
real browser), memory, and the headline measures computed without the load-time tables (DuckDB from the base
tables, Polars and pandas on the same Parquet files), each checked to give the catalog's rows.

`python -m outcomes bench --clients N` writes benchmarks/results/bench-N.json and prints a summary. Generation,
load and the baselines each run in a child process, so each one's peak memory is its own; the queries and the
AppTest pages run in this process against the read-only database, as a server would; the browser measure drives
a real `streamlit run` server on loopback with Chromium.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
import tempfile
from pathlib import Path

from outcomes.bench.children import GENERATE, LOAD, child
from outcomes.bench.machine import load_average, machine, peak_rss_mb
from outcomes.bench.ratios import bench_ratios
from outcomes.bench.report import TARGETS, summary, targets
from outcomes.bench.serving import PAGES_DIR, bench_pages, bench_queries
from outcomes.bench.spark import bench_spark
from outcomes.paths import ROOT

__all__ = ["PAGES_DIR", "RESULTS_DIR", "ROOT", "TARGETS", "run", "summary"]

RESULTS_DIR = ROOT / "benchmarks" / "results"


def load_median(data_dir: Path, db_path: Path, runs: int, progress=print) -> dict:
    """Load + validate `runs` times into a fresh file: the median, each run, and the phases of the median run."""
    done = []
    for i in range(runs):
        db_path.unlink(missing_ok=True)
        info, rss = child(LOAD, str(data_dir), str(db_path))
        marks = info["phases"] + [["end", info["seconds"]]]
        phases = {m: round(b - a, 2) for (m, a), (_, b) in zip(marks, marks[1:]) if m != "published"}
        done.append((info["seconds"], rss, phases, info["data_through"]))
        progress(f"load {i + 1}/{runs}: {info['seconds']:.1f} s")
    ordered = sorted(done, key=lambda d: d[0])
    seconds, _, phases, through = ordered[(len(ordered) - 1) // 2]
    return {
        "seconds": round(statistics.median(d[0] for d in done), 1),
        "runs_seconds": [round(d[0], 1) for d in done],
        "peak_rss_mb": max(d[1] for d in done),
        "phases": phases,
        "database_mb": round(db_path.stat().st_size / 2**20, 1),
        "data_through": through,
    }


def run(
    clients: int = 1_000_000,
    runs: int = 5,
    seed: int = 42,
    json_path: Path | None = None,
    workdir: Path | None = None,
    reuse: bool = False,
    keep: bool = False,
    progress=print,
    engine: str = "duckdb",
    browser: bool = True,
    port: int | None = None,
    load_runs: int | None = None,
    browser_options: dict | None = None,
) -> dict:
    """Run the whole benchmark; returns the result dictionary (also saved as JSON). Every figure is a median
    of `runs`. With engine "spark", the load-time tables are also built on Spark local[2] and published, timed
    beside the DuckDB build. `browser`: also time the pages in Chromium against a server on `port` (default:
    a free one; `browser_options`: more arguments of bench_browser). `load_runs`: loads to take the median of (default `runs`). The JSON is written after each
    step, with "complete" false until the last, so a run cut short keeps what it measured."""
    own_work = workdir is None
    work = Path(tempfile.mkdtemp(prefix="outcomes-bench-")) if own_work else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    data_dir, db_path, marker = work / "data", work / "outcomes.duckdb", work / "data" / "generated.json"
    result: dict = {
        "clients": clients,
        "seed": seed,
        "runs": runs,
        "engine": engine,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "complete": False,
        "machine": machine(),
    }
    path = (
        Path(json_path) if json_path else RESULTS_DIR / f"bench-{clients}{'-spark' if engine == 'spark' else ''}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        path.write_text(json.dumps(result, indent=1, default=str) + "\n")

    try:
        previous = json.loads(marker.read_text()) if reuse and marker.exists() else None
        if previous and previous.get("clients") == clients and previous.get("seed") == seed:
            result["generate"] = previous["generate"] | {"reused": True}
            progress(f"reusing {data_dir} (generated in {previous['generate']['seconds']:.1f} s)")
        else:
            progress(f"generating {clients:,} clients in {data_dir} ...")
            info, rss = child(GENERATE, str(data_dir), str(clients), str(seed))
            result["generate"] = {"seconds": round(info["seconds"], 1), "peak_rss_mb": rss, "rows": info["rows"]}
            marker.write_text(json.dumps({"clients": clients, "seed": seed, "generate": result["generate"]}))
        result["rows"] = result["generate"]["rows"]
        progress(f"generated: {result['rows']}; loading ...")
        result["load"] = load_median(data_dir, db_path, load_runs or runs, progress)
        progress(f"loaded in {result['load']['seconds']:.1f} s (median)")
        save()
        if engine == "spark":
            result["spark"] = bench_spark(data_dir, work, db_path, result["load"], progress)
        progress("timing queries ...")
        result["queries"] = bench_queries(db_path, runs)
        save()
        progress("timing pages ...")
        result["pages"] = bench_pages(db_path, runs)
        result["serving_peak_rss_mb"] = peak_rss_mb()
        save()
        progress("baselines: DuckDB from the base tables, Polars, pandas ...")
        query_ms = {
            (q["name"], label): q.get(f"{label}_ms") for q in result["queries"] for label in ("default", "filtered")
        }
        result["ratios"] = bench_ratios(data_dir, db_path, runs, query_ms, work, clients)
        save()
        if browser:
            from outcomes.bench.browser import bench_browser

            progress("timing pages in Chromium ...")
            result["browser"] = bench_browser(db_path, runs, port=port, progress=progress, **(browser_options or {}))
        result["machine"]["load_average_end"] = load_average()
        result["targets"] = targets(result)
        result["complete"] = True
    finally:
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)
        elif not keep:
            db_path.unlink(missing_ok=True)
    save()
    result["json_path"] = str(path)
    return result
