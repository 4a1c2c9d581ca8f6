"""The optional annotations extract: checked like the other four by the real loader, the value never repeated in
a message; no file, an empty table; the catalog query limits it to the sites in view."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest

from outcomes.catalog import runner
from outcomes.catalog.query import load_catalog
from outcomes.ingest import db
from outcomes.ingest.loader import load
from outcomes.ingest.problems import LoadError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "director"  # sites Northside and Southside
HEADER = "annotation_id,start_date,end_date,site,label,category\n"


@pytest.fixture
def folder(tmp_path) -> Path:
    out = tmp_path / "files"
    shutil.copytree(FIXTURE, out, ignore=shutil.ignore_patterns("README.md"))
    return out


def _table(path: Path) -> dict[str, list]:
    """The published annotations by column, missing values as None ({} when empty)."""
    con = db.connect(path)
    try:
        cur = con.execute("select * from annotations order by annotation_id")
        names = [d[0] for d in cur.description]
        return dict(zip(names, map(list, zip(*cur.fetchall()))))
    finally:
        con.close()


def test_no_file_loads_an_empty_table(folder, tmp_path):
    result = load(folder, tmp_path / "x.duckdb")
    assert "annotations" not in result.rows
    assert _table(tmp_path / "x.duckdb") == {}
    con = db.connect(tmp_path / "x.duckdb")
    try:
        assert "annotations" not in {r[0] for r in con.execute("select table_name from load_files").fetchall()}
    finally:
        con.close()


def test_a_good_file_loads_and_a_changed_one_loads_again(folder, tmp_path):
    (folder / "annotations.csv").write_text(
        HEADER + "A1,2025-03-01,,Northside,Transport starts,service\nA2,2025-01-01,2025-02-15,,Staffing gap,\n"
    )
    result = load(folder, tmp_path / "x.duckdb")
    assert result.rows["annotations"] == 2
    got = _table(tmp_path / "x.duckdb")
    assert got["site"] == ["Northside", None] and got["category"] == ["service", None]
    assert got["end_date"] == [None, dt.date(2025, 2, 15)]
    assert not load(folder, tmp_path / "x.duckdb").changed  # nothing changed
    (folder / "annotations.csv").write_text(HEADER + "A1,2025-03-01,,Northside,Transport starts,service\n")
    assert load(folder, tmp_path / "x.duckdb").changed  # only the annotations changed
    assert _table(tmp_path / "x.duckdb")["annotation_id"] == ["A1"]


def test_parquet_annotations_load(folder, tmp_path):
    pd.DataFrame(
        {
            "annotation_id": ["A1"],
            "start_date": [pd.Timestamp("2025-03-01").date()],
            "end_date": [None],
            "site": ["Southside"],
            "label": ["Evening track opens"],
        }
    ).to_parquet(folder / "annotations.parquet")
    assert load(folder, tmp_path / "x.duckdb").rows["annotations"] == 1
    assert _table(tmp_path / "x.duckdb")["category"] == [None]  # an optional column may be left out


SECRET_PHONE = "555-867-5309"
SECRET_MRN = "MRN 00123456"
LONG = "x" * 81


def test_problems_name_file_line_and_column_and_never_the_value(folder, tmp_path):
    (folder / "annotations.csv").write_text(
        HEADER
        + "A1,2025-03-01,,Northside,Transport starts,service\n"  # line 2: good
        + "A2,2025-05-01,2025-03-01,Northside,Backwards,\n"  # line 3: end before start
        + "A3,2025-13-01,,,Bad month,\n"  # line 4: not a date
        + f"A1,2025-04-01,,Westside,Call {SECRET_PHONE} for rides,\n"  # line 5: duplicate id, unknown site, phone
        + f"A5,2025-04-01,,,{LONG},\n"  # line 6: too long
        + f'A6,2025-04-01,,,"two\nlines",{SECRET_MRN}\n'  # lines 7-8: a line break; an identifier in category
        + "A7,,,,,\n"  # line 9: required values empty
    )
    with pytest.raises(LoadError) as caught:
        load(folder, tmp_path / "x.duckdb")
    found = [(p.file, p.line, p.column, p.rule) for p in caught.value.problems]
    assert found == [
        ("annotations.csv", 3, "end_date", "end-before-start"),
        ("annotations.csv", 4, "start_date", "type"),
        ("annotations.csv", 5, "annotation_id", "unique"),
        ("annotations.csv", 5, "site", "foreign-key"),
        ("annotations.csv", 5, "label", "identifier-like-value"),
        ("annotations.csv", 6, "label", "length"),
        ("annotations.csv", 7, "label", "one-line"),
        ("annotations.csv", 7, "category", "identifier-like-value"),
        ("annotations.csv", 9, "start_date", "required"),
        ("annotations.csv", 9, "label", "required"),
    ]
    report = str(caught.value)
    assert "annotations.csv, line 5, column label: value looks like an identifier" in report
    for secret in (SECRET_PHONE, SECRET_MRN, LONG, "Westside", "2025-13-01"):
        assert secret not in report
    assert not (tmp_path / "x.duckdb").exists()  # nothing was published


def test_an_identifier_column_or_a_missing_one_is_refused(folder, tmp_path):
    (folder / "annotations.csv").write_text("annotation_id,start_date,label,client_name\nA1,2025-03-01,Opens,x\n")
    with pytest.raises(LoadError, match=r"annotations.csv, column client_name: looks like a name"):
        load(folder, tmp_path / "x.duckdb")
    (folder / "annotations.csv").write_text("annotation_id,label\nA1,Opens\n")
    with pytest.raises(LoadError, match=r"annotations.csv, column start_date: required column is missing"):
        load(folder, tmp_path / "x.duckdb")


def test_the_query_keeps_the_sites_in_view(folder, tmp_path):
    (folder / "annotations.csv").write_text(
        HEADER
        + "A1,2025-03-01,,Northside,North event,\n"
        + "A2,2025-01-01,2025-02-15,Southside,South span,\n"
        + "A3,2025-04-01,,,Everyone,\n"
    )
    load(folder, tmp_path / "x.duckdb")
    con = db.connect(tmp_path / "x.duckdb")
    query = load_catalog()["annotations"]
    try:

        def ids(scope=None, **given):
            return runner.run(con, query, given, scope=scope).data["annotation_id"].tolist()

        assert ids() == ["A2", "A1", "A3"]
        assert ids(("Northside",)) == ["A1", "A3"]
        assert ids(("Northside",), sites=["Southside"]) == ["A3"]  # a site outside the scope: none of its events
        assert ids(sites=["Southside"]) == ["A2", "A3"]
        assert ids(start=pd.Timestamp("2025-02-01").date(), end=pd.Timestamp("2025-03-01").date()) == ["A2", "A1"]
    finally:
        con.close()
