"""The load-time tables built on Spark local[2], beside the DuckDB build of the same run."""

from __future__ import annotations

import shutil
from pathlib import Path

from outcomes.bench.children import child, child_tree

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
from outcomes.bench import spark
out = {"same": spark.same_tables(sys.argv[1], sys.argv[2])}
"""

SPARK_MASTER = "local[2]"
SPARK_DRIVER_MEMORY = "4g"  # the JVM heap of local mode, where the driver is the executor too


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
    info, rss = child(_LAKE, str(data_dir), str(lake_dir))
    out: dict = {
        "master": SPARK_MASTER,
        "driver_memory": SPARK_DRIVER_MEMORY,
        "lake": {"seconds": round(info["seconds"], 1), "peak_rss_mb": rss},
    }
    progress(f"building on Spark {SPARK_MASTER} ...")
    info, rss = child_tree(_SPARK_BUILD, str(lake_dir), str(built), SPARK_MASTER, SPARK_DRIVER_MEMORY)
    out["build"] = {
        "seconds": round(info["seconds"], 1),
        "peak_rss_mb": rss,
        "spark": info["spark"],
        "tables": info["tables"],
    }
    progress(f"built on Spark in {info['seconds']:.1f} s; load --prebuilt ...")
    info, rss = child(_LOAD_PREBUILT, str(lake_dir), str(spark_db), str(built))
    marks = info["phases"] + [["end", info["seconds"]]]
    out["load_prebuilt"] = {
        "seconds": round(info["seconds"], 1),
        "peak_rss_mb": rss,
        "phases": {m: round(b - a, 2) for (m, a), (_, b) in zip(marks, marks[1:]) if m != "published"},
    }
    out["duckdb_build_seconds"] = duck_load["phases"].get("building summaries")
    progress("comparing the two databases ...")
    # in a child, so that the comparison's memory is not counted as serving memory below
    info, _ = child(_SAME, str(duck_db), str(spark_db))
    out["same_tables"] = info["same"]
    for path in (lake_dir, built):
        shutil.rmtree(path, ignore_errors=True)
    spark_db.unlink(missing_ok=True)
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
