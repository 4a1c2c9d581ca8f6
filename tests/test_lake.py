"""A lake (a folder of hive-partitioned Parquet files per table) loads like a folder of files, and its problems
name the row's key, since a lake has no lines."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from outcomes.ingest import lake
from outcomes.ingest.loader import load
from outcomes.ingest.problems import LoadError
from outcomes.ingest.sources import checksum

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ROOT / "tests" / "fixtures" / "headline"
AS_OF = dt.date(2025, 6, 30)


@pytest.fixture
def headline_lake(tmp_path) -> Path:
    lake.write(HEADLINE, tmp_path / "lake")
    return tmp_path / "lake"


def test_lake_layout_is_partitioned_by_site_and_month(headline_lake):
    parts = {p.relative_to(headline_lake).parts[:3] for p in headline_lake.rglob("*.parquet")}
    assert ("enrollments", "site=Northside", "month=2025-03") in parts
    assert all(len(p) == 3 for p in parts if p[0] != "clients")


def test_lake_load_equals_the_csv_load(headline_lake, tmp_path):
    load(HEADLINE, tmp_path / "csv.duckdb", AS_OF)
    result = load(headline_lake, tmp_path / "lake.duckdb", AS_OF)
    assert result.ignored_columns["attendance"] == ["month", "site"]  # partition keys not in the contract
    con = duckdb.connect()
    con.execute(f"attach '{tmp_path / 'csv.duckdb'}' as a (read_only)")
    con.execute(f"attach '{tmp_path / 'lake.duckdb'}' as b (read_only)")
    tables = [
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where database_name = 'a' "
            "and table_name not in ('load_info', 'load_files')"
        ).fetchall()
    ]
    assert len(tables) > 10
    for t in tables:
        for x, y in (("a", "b"), ("b", "a")):
            assert (
                con.execute(
                    f"select count(*) from (select * from {x}.{t} except all select * from {y}.{t})"
                ).fetchone()[0]
                == 0
            ), t


def test_lake_problems_name_the_key(headline_lake, tmp_path):
    part = next((headline_lake / "attendance").rglob("*.parquet"))
    con = duckdb.connect()
    first = con.execute(f"select session_id from read_parquet('{part}') order by session_id limit 1").fetchone()[0]
    con.execute(
        f"copy (select * replace (case when session_id = '{first}' then 'attended!' else status end as status) "
        f"from read_parquet('{part}')) to '{part}.new' (format parquet)"
    )
    Path(f"{part}.new").replace(part)
    with pytest.raises(LoadError) as err:
        load(headline_lake, tmp_path / "x.duckdb", AS_OF)
    [p] = err.value.problems
    assert (p.file, p.key, p.column, p.rule, p.line) == (
        "attendance/",
        f"session_id {first}",
        "status",
        "allowed-values",
        None,
    )


def test_lake_checksum_covers_every_data_file_and_nothing_else(headline_lake):
    before = checksum(headline_lake / "attendance")
    (headline_lake / "attendance" / "_SUCCESS").write_text("")
    (headline_lake / "attendance" / "_temporary").mkdir()
    shutil.copy(
        next((headline_lake / "attendance").rglob("*.parquet")),
        headline_lake / "attendance" / "_temporary" / "x.parquet",
    )
    assert checksum(headline_lake / "attendance") == before
    next((headline_lake / "attendance").rglob("data_0.parquet")).unlink()
    assert checksum(headline_lake / "attendance") != before


def test_a_table_both_as_file_and_folder_is_ambiguous(headline_lake, tmp_path):
    shutil.copy(HEADLINE / "clients.csv", headline_lake / "clients.csv")
    with pytest.raises(LoadError) as err:
        load(headline_lake, tmp_path / "x.duckdb", AS_OF)
    assert [p.rule for p in err.value.problems] == ["ambiguous-file"]
