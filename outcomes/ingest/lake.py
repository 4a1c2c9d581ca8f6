"""The lake layout for extracts at scale: a folder per table of Parquet files, partitioned hive-style.

    LAKE/clients/*.parquet
    LAKE/enrollments/site=S/month=YYYY-MM/*.parquet    month of admit_date
    LAKE/attendance/site=S/month=YYYY-MM/*.parquet     site of the episode, month of session_date
    LAKE/transitions/site=S/month=YYYY-MM/*.parquet    site of the referring episode, month of referral_date

`site` lives in the path only (it is a contract column of enrollments alone); the loader and the Spark build
read partition values as text and ignore the partition columns a table does not have in the contract.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from outcomes.ingest import contract

# table -> (query giving its rows with `site` and `month`, from the tables as read); clients is not partitioned.
PARTITIONED = {
    "enrollments": "select *, strftime(admit_date, '%Y-%m') as month from enrollments",
    "attendance": "select a.*, e.site, strftime(a.session_date, '%Y-%m') as month "
    "from attendance as a inner join enrollments as e on a.episode_id = e.episode_id",
    "transitions": "select t.*, e.site, strftime(t.referral_date, '%Y-%m') as month "
    "from transitions as t inner join enrollments as e on t.from_episode_id = e.episode_id",
}


def _sql_str(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _read(path: Path, table: contract.Table) -> str:
    if path.suffix == ".parquet":
        return f"read_parquet({_sql_str(path)})"
    spec = "{" + ", ".join(f"{_sql_str(c.name)}: {_sql_str(c.type)}" for c in table.columns) + "}"
    return f"read_csv({_sql_str(path)}, header=true, auto_detect=false, columns={spec}, dateformat='%Y-%m-%d')"


def write(folder: str | Path, lake: str | Path) -> dict[str, int]:
    """Write the four tables of a flat folder of valid extracts (CSV or Parquet, every contract column) as a
    lake; returns rows by table. Rows whose episode is unknown are left out, so check the folder first."""
    folder, lake = Path(folder), Path(lake)
    # Row order within a partition means nothing; not keeping it, and a memory cap, let DuckDB stream the copy
    # (keeping order, the 1M-client demo's sessions took 12 GB).
    con = duckdb.connect(config={"preserve_insertion_order": False, "memory_limit": "2GB"})
    try:
        for name, table in contract.TABLES.items():
            path = next(p for p in (folder / f"{name}.parquet", folder / f"{name}.csv") if p.exists())
            con.execute(f"create view {name} as select * from {_read(path, table)}")
        counts = {}
        for name in contract.TABLES:
            target = lake / name
            target.mkdir(parents=True, exist_ok=True)
            if name in PARTITIONED:
                con.execute(
                    f"copy ({PARTITIONED[name]}) to {_sql_str(target)} "
                    "(format parquet, partition_by (site, month), overwrite_or_ignore true)"
                )
            else:
                con.execute(f"copy {name} to {_sql_str(target / 'part-0.parquet')} (format parquet)")
            counts[name] = con.execute(f"select count(*) from {name}").fetchone()[0]
        return counts
    finally:
        con.close()
