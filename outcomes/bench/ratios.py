"""Like-for-like ratios: the two headline measures computed without the load-time tables, in DuckDB from the
base tables, in Polars and in pandas on the same Parquet files, each checked equal to the catalog's rows, beside
the catalog's served time (the same query on the load-time tables)."""

from __future__ import annotations

import pickle
import statistics
from pathlib import Path

from outcomes.bench.children import child
from outcomes.bench.pandas_baseline import same_rows
from outcomes.bench.serving import typical_filters

# engine -> (module with read_tables and MEASURES, what it reads: "data" the Parquet folder, "db" the database)
ENGINES = {
    "duckdb_base": ("outcomes.bench.base_sql", "db"),
    "polars": ("outcomes.bench.polars_baseline", "data"),
    "pandas": ("outcomes.bench.pandas_baseline", "data"),
}
MEASURES = ("stepdown_rate", "engagement_by_week")
LABELS = ("default", "filtered")

_BASELINE = """
import importlib, pickle
mod = importlib.import_module(sys.argv[1])
cases = pickle.loads(open(sys.argv[3], "rb").read())
runs, warm = int(sys.argv[5]), sys.argv[6] == "1"
t = time.perf_counter()
tables = mod.read_tables(sys.argv[2])
read = time.perf_counter() - t
results = []
for name, params in cases:
    if warm:
        mod.MEASURES[name](tables, **params)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        df = mod.MEASURES[name](tables, **params)
        times.append(time.perf_counter() - t)
    results.append((times, df))
open(sys.argv[4], "wb").write(pickle.dumps(results))
out = {"read_seconds": read}
"""


def catalog_cases(db_path: Path) -> tuple[list[tuple[str, dict]], dict]:
    """Each measure with default and typical filters: its flat parameters as the runner resolved them, and the
    catalog's rows for it."""
    from outcomes.catalog import runner
    from outcomes.catalog.query import load_catalog
    from outcomes.ingest import db

    catalog = load_catalog()
    con = db.connect(db_path)
    cases, rows = [], {}
    try:
        for name in MEASURES:
            for label, given in (("default", {}), ("filtered", typical_filters(con, catalog[name]))):
                result = runner.run(con, catalog[name], given, raw=True)
                flat = {k: v for k, v in result.params.items() if k != "filters"} | result.params.get("filters", {})
                cases.append((name, flat))
                rows[(name, label)] = result.data
    finally:
        con.close()
    return cases, rows


def engine_runs(engine: str, clients: int, runs: int) -> tuple[int, bool]:
    """Timed runs and whether to warm up first. At 500k clients and more a case takes 5-30 s in DuckDB from the
    base tables and in Polars and a minute in pandas: one run each there, DuckDB after a warm-up so that it reads
    from memory as the served queries do (Polars and pandas have read their tables already). At small scale, a
    warm-up and `runs` (pandas up to three)."""
    large = clients >= 500_000
    if engine == "pandas":
        return (1, False) if large else (max(1, min(runs, 3)), False)
    if large:
        return 1, engine == "duckdb_base"
    return max(1, runs), True


def bench_ratios(data_dir: Path, db_path: Path, runs: int, served_ms: dict, work: Path, clients: int) -> dict:
    """Every engine in its own child process over the same cases; times, equality with the catalog and ratios."""
    cases, rows = catalog_cases(db_path)
    cases_file = work / "baseline-cases.pkl"
    cases_file.write_bytes(pickle.dumps(cases))
    engines, timed = {}, {}
    for engine, (module, reads) in ENGINES.items():
        n, warm = engine_runs(engine, clients, runs)
        results_file = work / f"baseline-{engine}.pkl"
        source = db_path if reads == "db" else data_dir
        info, rss = child(_BASELINE, module, str(source), str(cases_file), str(results_file), str(n), str(int(warm)))
        engines[engine] = {
            "read_seconds": round(info["read_seconds"], 2),
            "peak_rss_mb": rss,
            "runs": n,
            "warm_up": warm,
        }
        for (name, _), (times, df), label in zip(cases, pickle.loads(results_file.read_bytes()), LABELS * 2):
            equal, detail = same_rows(df, rows[(name, label)])
            timed[(name, label, engine)] = (statistics.median(times) * 1000, equal, detail)
    measures = []
    for name, _ in cases[:: len(LABELS)]:
        for label in LABELS:
            served = served_ms[(name, label)]
            row: dict = {"name": name, "params": label, "served_ms": served}
            for engine in ENGINES:
                ms, equal, detail = timed[(name, label, engine)]
                row[f"{engine}_ms"] = round(ms, 1)
                row[f"{engine}_equal"] = equal
                row[f"{engine}_detail"] = detail
            base = row["duckdb_base_ms"]
            row["pandas_over_served"] = round(row["pandas_ms"] / served, 1) if served else None
            row["pandas_over_duckdb_base"] = round(row["pandas_ms"] / base, 1) if base else None
            row["polars_over_duckdb_base"] = round(row["polars_ms"] / base, 1) if base else None
            row["duckdb_base_over_served"] = round(base / served, 1) if served else None
            measures.append(row)
    return {"engines": engines, "measures": measures}
