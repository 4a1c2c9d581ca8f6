"""Build the load-time tables of queries/_build on Apache Spark, from Parquet extracts, into Parquet.

`python -m outcomes build --engine spark --source LAKE --out DIR [--master URL]`, then
`python -m outcomes load LAKE --prebuilt DIR` validates LAKE as always and publishes DIR's tables. LAKE is a
folder per table, partitioned hive-style (docs/scale.md), or a flat folder of the four Parquet files. The Spark
SQL is made from queries/_build by outcomes.scale.spark_sql; each table is written as DIR/NAME/part-*.parquet in the
order its query sorts by, and DIR/_manifest.json last. `spark-submit outcomes/scale/spark_build.py --source ...
--out ...` runs the same on a cluster.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:  # run as a file by spark-submit: import it as the package module
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
    from outcomes.scale.spark_build import main

    sys.exit(main())

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from outcomes.ingest import contract, prebuilt
from outcomes.scale import spark_sql

ENGINE = "spark"
SPARK_TYPES = {"VARCHAR": "string", "INTEGER": "int", "DATE": "date", "BOOLEAN": "boolean"}
# Settings every build needs: dates must not shift with the machine's time zone, partition values stay text
# as the loader reads them, and the 31-day rule's recursion has as many steps as a client has discharges.
CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.cteRecursionLevelLimit": "100000",
    "spark.sql.parquet.compression.codec": "zstd",
}
# Only for local[*] and local[N]: a small shuffle suits one machine; the driver is the executor.
LOCAL_CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "8", "spark.driver.memory": "2g"}


class SourceError(ValueError):
    """The source folder lacks a table or a required column."""


def session(master: str | None = "local[*]", conf: dict[str, str] | None = None):
    """A SparkSession for the build; `master` None leaves it to spark-submit."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("outcomes-build")
    settings = dict(CONF)
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            settings |= LOCAL_CONF
    for key, value in (settings | (conf or {})).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _active():
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name


def _local(path: str) -> Path | None:
    """The path on this machine, or None for a URL Spark reads (hdfs://, s3a://...)."""
    if "://" not in path:
        return Path(path)
    return Path(path[len("file://") :]) if path.startswith("file://") else None


def _locate(source: str, name: str) -> str:
    local = _local(source)
    if local is None:
        return _join(source, name)  # a cluster's store: the documented folder per table
    for candidate in (local / name, local / f"{name}.parquet"):
        if candidate.exists():
            return str(candidate)
    raise SourceError(f"no {name}/ or {name}.parquet in {source}")


def read_source(spark, source: str) -> dict[str, object]:
    """The four base tables as DataFrames with exactly the contract's columns and types (an absent optional
    column is null, as in the loader). Partition columns that are not contract columns are dropped."""
    from pyspark.sql import functions as F

    out = {}
    for name, table in contract.TABLES.items():
        path = _locate(source, name)
        reader = spark.read if path.endswith(".parquet") else spark.read.option("basePath", path)
        df = reader.parquet(path)
        missing = [c for c in table.required if c not in df.columns]
        if missing:
            raise SourceError(f"{name}: required column {', '.join(missing)} missing")
        out[name] = df.select(
            [
                (F.col(c.name) if c.name in df.columns else F.lit(None)).cast(SPARK_TYPES[c.type]).alias(c.name)
                for c in table.columns
            ]
        )
    return out


def _write_text(spark, path: str, text: str) -> None:
    """Write a small file through Hadoop's file system API, so the manifest lands where the tables do."""
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)
    fs = target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    stream = fs.create(target, True)
    try:
        stream.write(bytearray(text.encode()))
    finally:
        stream.close()


def _delete(spark, path: str) -> None:
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(path)
    target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(target, True)


def build(
    source: str | Path,
    out: str | Path,
    master: str | None = "local[*]",
    spark=None,
    conf: dict[str, str] | None = None,
    progress=None,
) -> dict:
    """Build every load-time table of queries/_build on Spark; returns the manifest's content.

    The Spark SQL is made before Spark starts, so a construct that does not carry fails at once. `spark`, when
    given, is used (and left running); otherwise a session is started on `master` and stopped at the end."""
    import json

    from outcomes.ingest.build import build_hash
    from outcomes.ingest.sources import checksum

    report = progress or (lambda message: None)
    started = time.monotonic()
    source, out = str(source), str(out)
    steps = spark_sql.steps()
    own = spark is None and _active() is None  # a session already running (a notebook's) is left running
    if spark is None:
        report(f"starting Spark on {master or 'the spark-submit master'}")
        spark = session(master, conf)
    try:
        local_out = _local(out)
        if (
            local_out is not None
            and local_out.exists()
            and any(local_out.iterdir())
            and not (local_out / prebuilt.MANIFEST).exists()
        ):
            raise SourceError(f"{out} holds files but no {prebuilt.MANIFEST}: give an empty or new folder")
        _delete(spark, _join(out, prebuilt.MANIFEST))  # a build cut short must not look finished
        base = read_source(spark, source)
        rows = {}
        for name, df in base.items():
            df.createOrReplaceTempView(name)
            rows[name] = df.count()
        seconds = {}
        for step in steps:
            if step.spark is None:
                continue
            table, t = step.statement.table, time.monotonic()
            report(f"building {table}")
            target = _join(out, table)
            spark.sql(step.spark).write.mode("overwrite").parquet(target)
            built = spark.read.parquet(target)  # later tables read the written files, not the plan again
            built.createOrReplaceTempView(table)
            rows[table] = built.count()
            seconds[table] = round(time.monotonic() - t, 2)
        local_source = _local(source)
        sources = {}
        for name in contract.TABLES:
            located = Path(_locate(source, name)) if local_source is not None else None
            sources[name] = checksum(located) if located is not None else None
        manifest = json.loads(
            prebuilt.manifest_text(
                build_hash(),
                ENGINE,
                sources,
                rows,
                {
                    "spark": spark.version,
                    "master": spark.sparkContext.master,
                    "seconds": seconds,
                    "built_at": dt.datetime.now().isoformat(timespec="seconds"),
                    "total_seconds": round(time.monotonic() - started, 2),
                },
            )
        )
        _write_text(spark, _join(out, prebuilt.MANIFEST), json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        report(f"built {len(seconds)} tables in {time.monotonic() - started:.1f} s")
        return manifest
    finally:
        if own:
            spark.stop()


def parser(prog: str = "spark_build.py") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog, description="Build the load-time tables on Spark.")
    ap.add_argument("--source", required=True, help="the extracts as Parquet: a lake folder or a flat folder")
    ap.add_argument("--out", required=True, help="folder for the built tables (new, empty, or a previous build)")
    ap.add_argument("--master", help="Spark master URL (default: what spark-submit gives)")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting")
    return ap


def conf_pairs(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SourceError(f"--conf {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def main(argv: list[str] | None = None) -> int:
    """Entry point for spark-submit."""
    args = parser().parse_args(argv)
    manifest = build(
        args.source, args.out, args.master, conf=conf_pairs(args.conf), progress=lambda m: print(m, file=sys.stderr)
    )
    print(", ".join(f"{k} {v:,}" for k, v in manifest["rows"].items()))
    return 0
