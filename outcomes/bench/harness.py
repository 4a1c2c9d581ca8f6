"""Benchmark at a stated scale: demo generation, load, every catalog query, every page, memory, and a pandas
baseline for two measures checked to give the same rows.

`python -m outcomes bench --clients N` writes benchmarks/results/bench-N.json and prints a summary. Generation,
load and the pandas baseline each run in a child process, so each one's peak memory is its own; the queries and
the pages run in this process against the read-only database, as a server would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

from outcomes.paths import ROOT

RESULTS_DIR = ROOT / "benchmarks" / "results"
PAGES_DIR = ROOT / "pages"

# Targets at 1M clients on 2 cores: (what, limit, unit, higher is better).
TARGETS = {
    "load_seconds": ("load + validate", 120.0, "s", False),
    "query_ms_max": ("slowest catalog query, median warm", 150.0, "ms", False),
    "page_filter_change_ms_max": ("slowest page rerun after a filter change", 300.0, "ms", False),
    "page_cached_ms_max": ("slowest cached page rerun", 50.0, "ms", False),
    "peak_memory_mb": ("peak memory, load and serving", 3072.0, "MB", False),
    "engagement_speedup": ("engagement_by_week, pandas / DuckDB", 20.0, "x", True),
}


def machine() -> dict:
    """Cores, memory, CPU model, versions and the load average now."""
    import duckdb
    import pandas
    import pyarrow
    import streamlit

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )
    mem = next(
        (int(line.split()[1]) // 1024 for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal:")),
        None,
    )
    return {
        "cores": os.cpu_count(),
        "memory_mb": mem,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "streamlit": streamlit.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _mb(kilobytes: int) -> float:
    return round(kilobytes / 1024, 1)  # ru_maxrss is in kilobytes on Linux


def _child(code: str, *args: str) -> tuple[dict, float]:
    """Run Python `code` with `args` in a child process: the JSON it prints last, and its own peak RSS in MB."""
    code += "\nprint(json.dumps(out | {'maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
    proc = subprocess.run(
        [sys.executable, "-c", "import json, resource, sys, time\n" + code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        raise RuntimeError(f"child process failed ({proc.returncode}): {tail}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out, _mb(out.pop("maxrss_kb"))


_GENERATE = """
from outcomes.ingest.demo import generate
t = time.perf_counter()
rows = generate(sys.argv[1], clients=int(sys.argv[2]), seed=int(sys.argv[3]))
out = {"seconds": time.perf_counter() - t, "rows": rows}
"""

_LOAD = """
from outcomes.ingest.loader import load
t, phases = time.perf_counter(), []
r = load(sys.argv[1], sys.argv[2], progress=lambda f, m: phases.append((m, time.perf_counter() - t)))
out = {"seconds": r.seconds, "rows": r.rows, "data_through": str(r.data_through), "phases": phases}
"""

_PANDAS = """
import pickle
from outcomes.bench import pandas_baseline as bp
cases = pickle.loads(open(sys.argv[2], "rb").read())
t = time.perf_counter()
tables = bp.read_tables(sys.argv[1])
read = time.perf_counter() - t
results = []
for name, params in cases:
    runs = []
    for _ in range(int(sys.argv[4])):
        t = time.perf_counter()
        df = bp.MEASURES[name](tables, **params)
        runs.append(time.perf_counter() - t)
    results.append((name, params, runs, df))
open(sys.argv[3], "wb").write(pickle.dumps(results))
out = {"read_seconds": read}
"""


_LAKE = """
from outcomes.ingest import lake
t = time.perf_counter()
lake.write(sys.argv[1], sys.argv[2])
out = {"seconds": time.perf_counter() - t}
"""

_SPARK_BUILD = """
from outcomes.scale import spark_build
t = time.perf_counter()
m = spark_build.build(sys.argv[1], sys.argv[2], sys.argv[3], conf={"spark.driver.memory": sys.argv[4]})
out = {"seconds": time.perf_counter() - t, "tables": m["seconds"], "spark": m["spark"], "master": m["master"]}
"""

_LOAD_PREBUILT = """
from outcomes.ingest.loader import load
t, phases = time.perf_counter(), []
r = load(sys.argv[1], sys.argv[2], progress=lambda f, m: phases.append((m, time.perf_counter() - t)), prebuilt=sys.argv[3])
out = {"seconds": r.seconds, "rows": r.rows, "phases": phases}
"""

_SAME = """
from outcomes.bench import harness as bench
out = {"same": bench.same_tables(sys.argv[1], sys.argv[2])}
"""

SPARK_MASTER = "local[2]"
SPARK_DRIVER_MEMORY = "4g"  # the JVM heap of local mode, where the driver is the executor too


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (the Spark JVM is a child of Python), in KB."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for p in tree:
        for line in _read(f"/proc/{p}/status").splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _child_tree(code: str, *args: str) -> tuple[dict, float]:
    """Like _child, but the peak is sampled (every 0.2 s) over the child and every process it starts."""
    import threading

    code += "\nprint(json.dumps(out))\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import json, sys, time\n" + code, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or [""]
        raise RuntimeError(f"child process failed ({proc.returncode}): {tail[0][:300]}")
    return json.loads(stdout.strip().splitlines()[-1]), _mb(peak[0])


def same_tables(a: Path, b: Path) -> dict[str, bool]:
    """Whether each table of `a` has the same row count and the same sum of row hashes in `b`."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        names = [
            r[0]
            for r in con.execute(
                "select table_name from duckdb_tables() where database_name = 'a' "
                "and table_name not in ('load_info', 'load_files') order by 1"
            ).fetchall()
        ]
        out = {}
        for name in names:
            fingerprint = "select count(*), sum(hash(t)::hugeint) from {}.{} as t"
            try:
                out[name] = (
                    con.execute(fingerprint.format("a", name)).fetchone()
                    == con.execute(fingerprint.format("b", name)).fetchone()
                )
            except duckdb.Error:
                out[name] = False
        return out
    finally:
        con.close()


def bench_spark(data_dir: Path, work: Path, duck_db: Path, duck_load: dict, progress=print) -> dict:
    """The load-time tables built on Spark (local[2]) from the same data as a lake, then published with
    `load --prebuilt`, beside the DuckDB build of the same run; and whether the two databases agree."""
    lake_dir, built, spark_db = work / "lake", work / "spark-built", work / "spark.duckdb"
    for path in (lake_dir, built):
        shutil.rmtree(path, ignore_errors=True)
    spark_db.unlink(missing_ok=True)
    progress("writing the lake ...")
    info, rss = _child(_LAKE, str(data_dir), str(lake_dir))
    out: dict = {
        "master": SPARK_MASTER,
        "driver_memory": SPARK_DRIVER_MEMORY,
        "lake": {"seconds": round(info["seconds"], 1), "peak_rss_mb": rss},
    }
    progress(f"building on Spark {SPARK_MASTER} ...")
    info, rss = _child_tree(_SPARK_BUILD, str(lake_dir), str(built), SPARK_MASTER, SPARK_DRIVER_MEMORY)
    out["build"] = {
        "seconds": round(info["seconds"], 1),
        "peak_rss_mb": rss,
        "spark": info["spark"],
        "tables": info["tables"],
    }
    progress(f"built on Spark in {info['seconds']:.1f} s; load --prebuilt ...")
    info, rss = _child(_LOAD_PREBUILT, str(lake_dir), str(spark_db), str(built))
    marks = info["phases"] + [["end", info["seconds"]]]
    out["load_prebuilt"] = {
        "seconds": round(info["seconds"], 1),
        "peak_rss_mb": rss,
        "phases": {m: round(b - a, 2) for (m, a), (_, b) in zip(marks, marks[1:]) if m != "published"},
    }
    out["duckdb_build_seconds"] = duck_load["phases"].get("building summaries")
    progress("comparing the two databases ...")
    # in a child, so that the comparison's memory is not counted as serving memory below
    info, _ = _child(_SAME, str(duck_db), str(spark_db))
    out["same_tables"] = info["same"]
    for path in (lake_dir, built):
        shutil.rmtree(path, ignore_errors=True)
    spark_db.unlink(missing_ok=True)
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn, runs: int) -> tuple[float, float, object]:
    """Median wall seconds and median CPU seconds (all threads) of `runs` calls after a warm-up call, and the
    last result. CPU time shows the work done when other processes share the cores."""
    result = fn()
    times, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), _cpu()
        result = fn()
        times.append(time.perf_counter() - t)
        cpu.append(_cpu() - c)
    return statistics.median(times), statistics.median(cpu), result


def typical_filters(con, query) -> dict:
    """One site and a six-month range (the six whole months before the data-through month), where declared."""
    from outcomes.catalog import runner

    cur = con.cursor()
    try:
        site = cur.execute("select min(value) from filter_options where filter = 'site'").fetchone()[0]
    finally:
        cur.close()
    through = runner.data_through_of(con)
    first = dt.date(through.year - (through.month <= 6), (through.month - 7) % 12 + 1, 1)
    last = dt.date(through.year, through.month, 1) - dt.timedelta(days=1)
    given = {"sites": [site], "start": first, "end": last}
    return {k: v for k, v in given.items() if query.takes(k)}


def bench_queries(db_path: Path, runs: int) -> list[dict]:
    """Median warm latency of every catalog query through the runner, with defaults and with typical filters."""
    from outcomes.catalog import runner
    from outcomes.catalog.query import load_catalog
    from outcomes.ingest import db

    con = db.connect(db_path)
    out = []
    try:
        for name, query in load_catalog().items():
            row = {"name": name}
            for label, given in (("default", {}), ("filtered", typical_filters(con, query))):
                try:
                    seconds, cpu, result = _timed(lambda: runner.run(con, query, given), runs)
                    row[f"{label}_ms"] = round(seconds * 1000, 1)
                    row[f"{label}_cpu_ms"] = round(cpu * 1000, 1)
                    row[f"{label}_rows"] = len(result.data)
                except Exception as exc:  # a failing query is a finding, not a crash
                    row[f"{label}_error"] = str(exc).splitlines()[0][:200]
            row["filtered_params"] = {
                k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in typical_filters(con, query).items()
            }
            out.append(row)
    finally:
        con.close()
    return out


def bench_pages(db_path: Path, runs: int, timeout: float = 300) -> list[dict]:
    """Server time of AppTest runs for every page: first render (cold caches), reruns after a change of the
    sidebar sites filter (each to a set of sites not shown before), and cached reruns with nothing changed."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from outcomes.ingest import db

    os.environ["OUTCOMES_DB"] = str(db_path)
    con = db.connect(db_path)
    try:
        sites = [
            r[0] for r in con.execute("select value from filter_options where filter = 'site' order by 1").fetchall()
        ]
    finally:
        con.close()
    choices = [list(c) for k in range(1, len(sites) + 1) for c in combinations(sites, k)]
    out = []
    for page in sorted(p.relative_to(ROOT).as_posix() for p in PAGES_DIR.glob("*.py")):
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
        at.switch_page(page)
        row: dict = {"page": page}
        t = time.perf_counter()
        at.run()
        row["first_ms"] = round((time.perf_counter() - t) * 1000, 1)
        problems = [str(e.value)[:200] for e in list(at.exception) + list(at.error)]
        try:
            widget = at.multiselect(key="sites")
        except (KeyError, IndexError):
            widget = None
        if widget is not None:
            times = []
            for choice in choices[: max(1, runs)]:
                widget.set_value(choice)
                t = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - t)
                widget = at.multiselect(key="sites")
                problems += [str(e.value)[:200] for e in list(at.exception) + list(at.error)]
            row["filter_change_ms"] = round(statistics.median(times) * 1000, 1)
            row["filter_changes"] = len(times)
        times = []
        for _ in range(max(1, runs)):
            t = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t)
        row["cached_ms"] = round(statistics.median(times) * 1000, 1)
        row["problems"] = sorted(set(problems))
        out.append(row)
    st.cache_data.clear()
    st.cache_resource.clear()
    return out


def bench_pandas(data_dir: Path, db_path: Path, runs: int, query_ms: dict, work: Path, clients: int) -> dict:
    """The pandas measures in a child process, with default and typical parameters; ratios and equality."""
    import pickle

    from outcomes.bench import pandas_baseline as bp
    from outcomes.catalog import runner
    from outcomes.catalog.query import load_catalog
    from outcomes.ingest import db

    catalog = load_catalog()
    con = db.connect(db_path)
    cases, duck = [], {}
    try:
        for name in bp.MEASURES:
            for label, given in (("default", {}), ("filtered", typical_filters(con, catalog[name]))):
                result = runner.run(con, catalog[name], given, raw=True)
                flat = {k: v for k, v in result.params.items() if k != "filters"} | result.params.get("filters", {})
                cases.append((name, flat))
                duck[(name, label)] = result.data
    finally:
        con.close()
    cases_file, results_file = work / "pandas-cases.pkl", work / "pandas-results.pkl"
    cases_file.write_bytes(pickle.dumps(cases))
    # pandas takes a minute a case at 1M clients: one timed run each there, up to three at small scale
    pandas_runs = 1 if clients >= 500_000 else max(1, min(runs, 3))
    info, rss = _child(_PANDAS, str(data_dir), str(cases_file), str(results_file), str(pandas_runs))
    results = pickle.loads(results_file.read_bytes())
    out = {"read_seconds": round(info["read_seconds"], 2), "peak_rss_mb": rss, "runs": pandas_runs, "measures": []}
    for (name, _params, times, df), label in zip(results, ["default", "filtered"] * len(bp.MEASURES)):
        equal, detail = bp.same_rows(df, duck[(name, label)])
        pandas_ms = statistics.median(times) * 1000
        duck_ms = query_ms[(name, label)]
        out["measures"].append(
            {
                "name": name,
                "params": label,
                "pandas_ms": round(pandas_ms, 1),
                "duckdb_ms": duck_ms,
                "speedup": round(pandas_ms / duck_ms, 1) if duck_ms else None,
                "speedup_with_read": round((pandas_ms + info["read_seconds"] * 1000) / duck_ms, 1) if duck_ms else None,
                "equal": equal,
                "detail": detail,
            }
        )
    return out


def run(
    clients: int = 1_000_000,
    runs: int = 7,
    seed: int = 42,
    json_path: Path | None = None,
    workdir: Path | None = None,
    reuse: bool = False,
    keep: bool = False,
    progress=print,
    engine: str = "duckdb",
) -> dict:
    """Run the whole benchmark; returns the result dictionary (also saved as JSON). With engine "spark", the
    load-time tables are also built on Spark local[2] and published, timed beside the DuckDB build."""
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
        "machine": machine(),
    }
    try:
        previous = json.loads(marker.read_text()) if reuse and marker.exists() else None
        if previous and previous.get("clients") == clients and previous.get("seed") == seed:
            result["generate"] = previous["generate"] | {"reused": True}
            progress(f"reusing {data_dir} (generated in {previous['generate']['seconds']:.1f} s)")
        else:
            progress(f"generating {clients:,} clients in {data_dir} ...")
            info, rss = _child(_GENERATE, str(data_dir), str(clients), str(seed))
            result["generate"] = {"seconds": round(info["seconds"], 1), "peak_rss_mb": rss, "rows": info["rows"]}
            marker.write_text(json.dumps({"clients": clients, "seed": seed, "generate": result["generate"]}))
        result["rows"] = result["generate"]["rows"]
        progress(f"generated: {result['rows']}; loading ...")
        db_path.unlink(missing_ok=True)
        info, rss = _child(_LOAD, str(data_dir), str(db_path))
        marks = info["phases"] + [["end", info["seconds"]]]
        phases = {m: round(b - a, 2) for (m, a), (_, b) in zip(marks, marks[1:]) if m != "published"}
        result["load"] = {
            "seconds": round(info["seconds"], 1),
            "peak_rss_mb": rss,
            "phases": phases,
            "database_mb": round(db_path.stat().st_size / 2**20, 1),
            "data_through": info["data_through"],
        }
        progress(f"loaded in {info['seconds']:.1f} s")
        if engine == "spark":
            result["spark"] = bench_spark(data_dir, work, db_path, result["load"], progress)
        progress("timing queries ...")
        result["queries"] = bench_queries(db_path, runs)
        progress("timing pages ...")
        result["pages"] = bench_pages(db_path, runs)
        result["serving_peak_rss_mb"] = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        progress("pandas baseline ...")
        query_ms = {
            (q["name"], label): q.get(f"{label}_ms") for q in result["queries"] for label in ("default", "filtered")
        }
        result["pandas"] = bench_pandas(data_dir, db_path, runs, query_ms, work, clients)
        result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        result["targets"] = targets(result)
    finally:
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)
        elif not keep:
            db_path.unlink(missing_ok=True)
    path = (
        Path(json_path) if json_path else RESULTS_DIR / f"bench-{clients}{'-spark' if engine == 'spark' else ''}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    result["json_path"] = str(path)
    return result


def targets(result: dict) -> dict:
    """Each target with the measured value and whether it was met."""
    queries = [q.get(f"{k}_ms") for q in result["queries"] for k in ("default", "filtered")]
    pages = result["pages"]
    engagement = [m["speedup"] for m in result["pandas"]["measures"] if m["name"] == "engagement_by_week"]
    values = {
        "load_seconds": result["load"]["seconds"],
        "query_ms_max": max((q for q in queries if q is not None), default=None),
        "page_filter_change_ms_max": max(
            (p["filter_change_ms"] for p in pages if "filter_change_ms" in p), default=None
        ),
        "page_cached_ms_max": max((p["cached_ms"] for p in pages), default=None),
        "peak_memory_mb": max(result["load"]["peak_rss_mb"], result["serving_peak_rss_mb"]),
        "engagement_speedup": min((s for s in engagement if s is not None), default=None),
    }
    out = {}
    for key, (what, limit, unit, higher) in TARGETS.items():
        value = values[key]
        met = None if value is None else (value >= limit if higher else value <= limit)
        out[key] = {"what": what, "target": limit, "unit": unit, "value": value, "met": met}
    return out


def spark_summary(result: dict) -> list[str]:
    sp = result.get("spark")
    if not sp:
        return []
    lp = sp["load_prebuilt"]
    same = [name for name, equal in sp["same_tables"].items() if not equal]
    return [
        "",
        f"load-time tables: DuckDB {sp['duckdb_build_seconds'] or 0:.1f} s (inside the load above); "
        f"Spark {sp['master']} {sp['build']['seconds']:.1f} s with JVM start (peak {sp['build']['peak_rss_mb']:,.0f} MB, "
        f"Python and JVM; driver memory {sp['driver_memory']})",
        f"  writing the lake {sp['lake']['seconds']:.1f} s; load --prebuilt {lp['seconds']:.1f} s "
        f"(peak {lp['peak_rss_mb']:,.0f} MB): " + ", ".join(f"{k} {v:.1f} s" for k, v in lp["phases"].items()),
        "  slowest on Spark: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(sp["build"]["tables"].items(), key=lambda kv: -kv[1])[:4]),
        "  every table the same in both databases" if not same else f"  DIFFERENT: {', '.join(same)}",
    ]


def summary(result: dict) -> str:
    """The result as plain-text tables."""
    m, rows = result["machine"], result["rows"]
    lines = [
        f"{result['clients']:,} clients: {rows['enrollments']:,} episodes, {rows['attendance']:,} sessions, "
        f"{rows['transitions']:,} referrals",
        f"{m['cores']} cores, {m['memory_mb'] or 0:,} MB, {m['cpu']}; Python {m['python']}, duckdb {m['duckdb']}, "
        f"pandas {m['pandas']}, streamlit {m['streamlit']}; load average at start {m['load_average']}",
        "",
        f"demo generation {result['generate']['seconds']:.1f} s (peak {result['generate'].get('peak_rss_mb', 0):,.0f} MB)"
        f"{' (reused)' if result['generate'].get('reused') else ''}",
        f"load + validate {result['load']['seconds']:.1f} s (peak {result['load']['peak_rss_mb']:,.0f} MB; "
        f"database {result['load']['database_mb']:,.0f} MB)",
        "  " + ", ".join(f"{k} {v:.1f} s" for k, v in result["load"]["phases"].items()),
        f"serving peak {result['serving_peak_rss_mb']:,.0f} MB (queries and pages in one process)",
        *spark_summary(result),
        "",
        f"{'query (median warm)':<28}{'default ms':>12}{'filtered ms':>13}{'cpu ms':>16}",
    ]
    for q in result["queries"]:
        cells = [f"{q[k]:>.1f}" if k in q else "error" for k in ("default_ms", "filtered_ms")]
        cpu = "/".join(f"{q[k]:.0f}" if k in q else "-" for k in ("default_cpu_ms", "filtered_cpu_ms"))
        lines.append(f"{q['name']:<28}{cells[0]:>12}{cells[1]:>13}{cpu:>16}")
    lines += ["", f"{'page':<28}{'first ms':>10}{'filter change ms':>18}{'cached ms':>11}"]
    for p in result["pages"]:
        change = f"{p['filter_change_ms']:.1f}" if "filter_change_ms" in p else "-"
        lines.append(
            f"{p['page']:<28}{p['first_ms']:>10.1f}{change:>18}{p['cached_ms']:>11.1f}"
            + (f"  problems: {'; '.join(p['problems'])}" if p["problems"] else "")
        )
    pd_ = result["pandas"]
    lines += [
        "",
        f"pandas baseline (read of the base tables {pd_['read_seconds']:.1f} s, peak {pd_['peak_rss_mb']:,.0f} MB)",
        f"{'measure':<22}{'params':<10}{'pandas ms':>11}{'duckdb ms':>11}{'speedup':>9}  same rows",
    ]
    for x in pd_["measures"]:
        lines.append(
            f"{x['name']:<22}{x['params']:<10}{x['pandas_ms']:>11.1f}{x['duckdb_ms'] or 0:>11.1f}"
            f"{(x['speedup'] or 0):>8.0f}x  {'yes' if x['equal'] else 'NO'}: {x['detail']}"
        )
    lines += ["", f"{'target':<44}{'limit':>10}{'measured':>12}  met"]
    for t in result["targets"].values():
        sign = ">=" if t["unit"] == "x" else "<="
        value = "-" if t["value"] is None else f"{t['value']:,.1f}"
        lines.append(
            f"{t['what']:<44}{sign + ' ' + format(t['target'], ',g') + ' ' + t['unit']:>10}{value:>12}  "
            f"{'-' if t['met'] is None else 'yes' if t['met'] else 'NO'}"
        )
    return "\n".join(lines)
