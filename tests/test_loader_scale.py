"""The loader's fast paths at scale check exactly what the plain ones do: one scan for the simple rules, a
shortcut for keys already in ascending order, typed Parquet read without conversion, no copy of the biggest
table. Each case here would be reported the same way without them."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from outcomes.ingest import contract
from outcomes.ingest.loader import load
from outcomes.ingest.problems import LoadError

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "tests" / "fixtures" / "headline"
AS_OF = dt.date(2025, 6, 30)


def to_parquet(folder: Path, typed: bool = True) -> None:
    """Rewrite the CSV files as Parquet: typed as the contract says, or every column as text."""
    con = duckdb.connect()
    for name, table in contract.TABLES.items():
        csv = folder / f"{name}.csv"
        if typed:
            columns = "{" + ", ".join(f"'{c.name}': '{c.type}'" for c in table.columns) + "}"
            reader = f"read_csv('{csv}', header=true, columns={columns})"
        else:
            reader = f"read_csv('{csv}', header=true, all_varchar=true)"
        con.execute(f"copy (select * from {reader}) to '{folder / name}.parquet' (format parquet)")
        csv.unlink()


def rewrite(path: Path, change) -> None:
    table = pq.read_table(path).to_pylist()
    change(table)
    pq.write_table(pa.Table.from_pylist(table, schema=pq.read_schema(path)), path)


@pytest.fixture
def src(tmp_path):
    folder = tmp_path / "src"
    shutil.copytree(GOOD, folder)
    return folder


def problems(src: Path, db: Path) -> list:
    with pytest.raises(LoadError) as err:
        load(src, db, AS_OF)
    return err.value.problems


def test_typed_parquet_loads_with_contract_types_and_file_order(src, tmp_path):
    to_parquet(src)
    load(src, tmp_path / "x.duckdb", AS_OF)
    con = duckdb.connect(str(tmp_path / "x.duckdb"), read_only=True)
    for name, table in contract.TABLES.items():
        types = con.execute(
            f"select column_name, data_type from information_schema.columns "
            f"where table_name = '{name}' order by ordinal_position"
        ).fetchall()
        assert types == [(c.name, c.type) for c in table.columns], name
    file_order = [r["session_id"] for r in pq.read_table(src / "attendance.parquet").to_pylist()]
    assert [r[0] for r in con.execute("select session_id from attendance order by rowid").fetchall()] == file_order


def test_parquet_problems_name_the_row(src, tmp_path):
    to_parquet(src)

    def break_rows(rows):
        rows[3]["status"] = "came"  # row 4
        rows[7]["session_id"] = rows[2]["session_id"]  # row 8 repeats row 3's id

    rewrite(src / "attendance.parquet", break_rows)
    found = {(p.rule, p.line, p.column) for p in problems(src, tmp_path / "x.duckdb")}
    assert ("allowed-values", 4, "status") in found
    assert ("unique", 8, "session_id") in found


def test_text_parquet_is_converted_and_checked(src, tmp_path):
    to_parquet(src, typed=False)

    def break_rows(rows):
        rows[5]["admit_date"] = "2025-02-30"

    rewrite(src / "enrollments.parquet", break_rows)
    found = {(p.rule, p.line, p.column) for p in problems(src, tmp_path / "x.duckdb")}
    assert ("type", 6, "admit_date") in found


@pytest.mark.parametrize(
    "ids, duplicate_line",
    [
        (["C1", "C2", "C3", "C4"], None),  # ascending: no duplicate search needed, and none found
        (["C4", "C2", "C3", "C1"], None),  # out of order, all distinct
        (["C1", "C2", "C2", "C3"], 4),  # ascending but for an adjacent repeat
        (["C3", "C1", "C2", "C1"], 5),  # a repeat after a descent
    ],
)
def test_duplicate_keys_in_any_order(src, tmp_path, ids, duplicate_line):
    lines = (src / "clients.csv").read_text().splitlines()
    header, rows = lines[0], lines[1 : len(ids) + 1]
    rows = [",".join([i] + r.split(",")[1:]) for i, r in zip(ids, rows)]
    (src / "clients.csv").write_text("\n".join([header] + rows) + "\n")
    (src / "enrollments.csv").write_text((GOOD / "enrollments.csv").read_text().splitlines()[0] + "\n")
    (src / "attendance.csv").write_text((GOOD / "attendance.csv").read_text().splitlines()[0] + "\n")
    (src / "transitions.csv").write_text((GOOD / "transitions.csv").read_text().splitlines()[0] + "\n")
    if duplicate_line is None:  # the header-only tables are refused as such, and nothing else is wrong
        assert {(p.file, p.rule) for p in problems(src, tmp_path / "x.duckdb")} == {
            (f"{t}.csv", "no-rows") for t in ("enrollments", "attendance", "transitions")
        }
    else:
        unique = [p for p in problems(src, tmp_path / "x.duckdb") if p.rule == "unique"]
        assert [(p.line, p.column) for p in unique] == [(duplicate_line, "client_id")]
