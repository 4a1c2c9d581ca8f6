"""The loader refuses each kind of bad input with file, line, column and rule, and changes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from outcomes.ingest.loader import load
from outcomes.ingest.problems import LoadError

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "tests" / "fixtures" / "headline"
AS_OF = dt.date(2025, 6, 30)


@pytest.fixture
def live(tmp_path):
    """A good database at the live path, and a copy of its source files to break."""
    src = tmp_path / "src"
    shutil.copytree(GOOD, src)
    db = tmp_path / "live.duckdb"
    load(src, db, AS_OF)
    return src, db


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"fixture no longer contains {old!r}"
    path.write_text(text.replace(old, new, count))


def set_field(path: Path, line: int, column: str, value: bytes | str) -> None:
    """Replace one field of a simple (unquoted) CSV line; `line` counts the header as 1."""
    lines = path.read_bytes().split(b"\n")
    col = lines[0].decode().strip().split(",").index(column)
    fields = lines[line - 1].split(b",")
    fields[col] = value if isinstance(value, bytes) else value.encode()
    lines[line - 1] = b",".join(fields)
    path.write_bytes(b"\n".join(lines))


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def refused(src: Path, db: Path) -> LoadError:
    before = digest(db)
    with pytest.raises(LoadError) as err:
        load(src, db, AS_OF)
    assert digest(db) == before, "a refused load changed the live database"
    assert not list(db.parent.glob(".*building*")), "a refused load left a partial file"
    return err.value


def only(err: LoadError, rule: str):
    hits = [p for p in err.problems if p.rule == rule]
    assert hits, f"no {rule} problem in:\n{err.report()}"
    return hits[0]


def test_good_fixture_loads_and_records_the_load(live):
    _, db = live
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("select data_through from load_info").fetchone()[0] == AS_OF
    files = dict(con.execute("select table_name, row_count from load_files where row_count is not null").fetchall())
    assert files == {"clients": 20, "enrollments": 35, "attendance": 41, "transitions": 5}
    assert len(con.execute("select sha256 from load_files where table_name = 'clients'").fetchone()[0]) == 64


def test_identical_files_are_no_change(live):
    src, db = live
    before = digest(db)
    result = load(src, db, AS_OF)
    assert result.changed is False and digest(db) == before


def test_as_of_defaults_to_latest_date(tmp_path):
    result = load(GOOD, tmp_path / "x.duckdb")
    assert result.data_through == dt.date(
        2025, 6, 27
    )  # SD12 attended IOP on 2025-06-27, the latest date in the fixture


def test_missing_file(live):
    src, db = live
    (src / "attendance.csv").unlink()
    p = only(refused(src, db), "missing-file")
    assert "attendance" in p.file


def test_missing_column(live):
    src, db = live
    edit(src / "enrollments.csv", "level_of_care,", "")
    p = only(refused(src, db), "missing-column")
    assert (p.file, p.line, p.column) == ("enrollments.csv", 1, "level_of_care")


@pytest.mark.parametrize("column", ["first_name", "SSN", "mrn", "dob", "street_address", "zip", "phone", "email"])
def test_identifier_column_is_refused(live, column):
    src, db = live
    path = src / "clients.csv"
    lines = path.read_text().splitlines()
    lines = [lines[0] + f",{column}"] + [line + ",x" for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    p = only(refused(src, db), "privacy")
    assert p.column == column and "identifier" in p.message


def test_wrong_type(live):
    src, db = live
    path = src / "attendance.csv"
    row = path.read_text().splitlines()[3]
    fields = row.split(",")
    fields[-1] = "ninety"
    edit(path, row, ",".join(fields))
    p = only(refused(src, db), "cast")
    assert (p.file, p.line, p.column) == ("attendance.csv", 4, "duration_minutes")
    assert "ninety" not in str(p)


def test_impossible_date(live):
    src, db = live
    path = src / "enrollments.csv"
    edit(path, "2025-03-05", "2025-02-30")
    p = only(refused(src, db), "cast")
    assert p.column in ("admit_date", "discharge_date") and p.line == line_of(path, "2025-02-30")


def test_unknown_vocabulary(live):
    src, db = live
    path = src / "enrollments.csv"
    edit(path, ",iop,", ",IOP,")
    p = only(refused(src, db), "allowed-values")
    assert (p.column, p.line) == ("level_of_care", line_of(path, ",IOP,"))


def test_duplicate_id(live):
    src, db = live
    path = src / "clients.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[1]]) + "\n")
    p = only(refused(src, db), "unique")
    assert (p.column, p.line) == ("client_id", len(lines) + 1)


def test_orphan_foreign_key(live):
    src, db = live
    path = src / "attendance.csv"
    row = path.read_text().splitlines()[2]
    fields = row.split(",")
    fields[1] = "E-NOPE"
    edit(path, row, ",".join(fields))
    p = only(refused(src, db), "foreign-key")
    assert (p.file, p.line, p.column) == ("attendance.csv", 3, "episode_id")


def test_discharge_before_admit(live):
    src, db = live
    path = src / "enrollments.csv"
    set_field(path, 2, "admit_date", "2025-03-09")  # E-SD01-R, discharged 2025-03-05
    p = only(refused(src, db), "discharge-before-admit")
    assert (p.line, p.column) == (2, "discharge_date")


def test_reason_without_discharge(live):
    src, db = live
    path = src / "enrollments.csv"
    set_field(path, 2, "discharge_date", "")  # E-SD01-R keeps its reason "completed"
    p = only(refused(src, db), "reason-without-discharge")
    assert (p.line, p.column) == (2, "discharge_reason")


def test_date_after_data_through(live):
    src, db = live
    edit(src / "attendance.csv", "2025-03-05", "2025-07-05")
    p = only(refused(src, db), "after-data-through")
    assert p.file == "attendance.csv" and p.column == "session_date"


def test_empty_file(live):
    src, db = live
    (src / "transitions.csv").write_bytes(b"")
    only(refused(src, db), "empty-file")


def test_bom_crlf_and_quoted_newlines_are_accepted(live):
    src, db = live
    path = src / "clients.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(",female,", ',"fe\r\nmale",', 1) if ",female," in lines[1] else lines[1]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    result = load(src, db, AS_OF)
    assert result.changed and result.rows["clients"] == 20


def test_quoted_newline_keeps_line_numbers_right(live):
    src, db = live
    path = src / "clients.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    gender = header.index("gender")
    fields = lines[1].split(",")
    fields[gender] = '"two\nlines"'
    lines[1] = ",".join(fields)
    lines.append(lines[2])  # a duplicate id, now on a later physical line
    path.write_text("\n".join(lines) + "\n")
    p = only(refused(src, db), "unique")
    assert p.line == len(lines) + 1  # one extra physical line from the quoted newline


def test_invalid_utf8(live):
    src, db = live
    path = src / "clients.csv"
    set_field(path, 3, "gender", b"m\xff\xfeale")
    p = only(refused(src, db), "invalid-encoding")
    assert (p.file, p.line) == ("clients.csv", 3)


def test_ten_megabyte_line(live):
    src, db = live
    path = src / "clients.csv"
    lines = path.read_text().splitlines()
    fields = lines[2].split(",")
    fields[2] = "x" * 10_000_000
    lines[2] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    err = refused(src, db)
    p = next(p for p in err.problems if p.file == "clients.csv")
    assert p.line == 3 and "x" * 50 not in err.report()


def test_truncated_parquet(live):
    src, db = live
    con = duckdb.connect()
    con.execute(
        f"copy (select * from read_csv('{src / 'attendance.csv'}')) to '{src / 'attendance.parquet'}' (format parquet)"
    )
    (src / "attendance.csv").unlink()
    data = (src / "attendance.parquet").read_bytes()
    (src / "attendance.parquet").write_bytes(data[: len(data) // 2])
    p = only(refused(src, db), "unreadable")
    assert p.file == "attendance.parquet"


def test_parquet_input_loads(live, tmp_path):
    src, _ = live
    con = duckdb.connect()
    for name in ("clients", "enrollments", "attendance", "transitions"):
        con.execute(
            f"copy (select * from read_csv('{src / name}.csv', all_varchar=true)) to '{src / name}.parquet' (format parquet)"
        )
        (src / f"{name}.csv").unlink()
    result = load(src, tmp_path / "pq.duckdb", AS_OF)
    assert result.rows == {"clients": 20, "enrollments": 35, "attendance": 41, "transitions": 5}


def test_nul_byte(live):
    src, db = live
    path = src / "clients.csv"
    set_field(path, 4, "gender", b"fe\x00male")
    p = only(refused(src, db), "nul-byte")
    assert (p.file, p.line) == ("clients.csv", 4)


def test_all_problems_are_reported_together(live):
    src, db = live
    edit(src / "enrollments.csv", ",iop,", ",IOP,")
    edit(src / "attendance.csv", ",attended,", ",came,")
    err = refused(src, db)
    assert {"enrollments.csv", "attendance.csv"} <= {p.file for p in err.problems}


def test_many_problems_are_capped_with_counts(live):
    src, db = live
    text = (src / "attendance.csv").read_text()
    (src / "attendance.csv").write_text(text.replace(",attended,", ",came,"))
    err = refused(src, db)
    report = err.report(limit=3)
    assert "more; counts by file and rule" in report and "attendance.csv allowed-values" in report


def test_messages_do_not_echo_other_values(live):
    src, db = live
    path = src / "enrollments.csv"
    row = next(r for r in path.read_text().splitlines() if ",iop," in r)
    edit(path, row, row.replace(",iop,", ",IOP,"))
    report = refused(src, db).report()
    others = [v for v in row.split(",") if len(v) > 3 and v != "iop"]
    assert not [v for v in others if v in report.replace("enrollments.csv", "")]


def test_killed_load_leaves_old_database_serving(tmp_path):
    src = tmp_path / "big"
    subprocess.run(
        [sys.executable, "-m", "outcomes", "demo", str(src), "--clients", "20000", "--format", "csv", "--quiet"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    db = tmp_path / "live.duckdb"
    load(GOOD, db, AS_OF)
    before = digest(db)
    proc = subprocess.Popen([sys.executable, "-m", "outcomes", "load", str(src), "--db", str(db), "--quiet"], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".live.duckdb.building-*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert digest(db) == before
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("select count(*) from clients").fetchone()[0] == 20
    con.close()
    load(src, db)  # the next load clears the dead build's leftovers and succeeds
    assert not list(tmp_path.glob(".live.duckdb.building-*"))


IDENTIFIER_LIKE = [  # (file, column, value): each an identifier typed into a free-text field
    ("enrollments.csv", "payer", "123-45-6789"),
    ("enrollments.csv", "payer", "123456789"),
    ("enrollments.csv", "asam_level", "2024-01-05"),
    ("enrollments.csv", "asam_level", "MRN 0045123"),
    ("clients.csv", "gender", "(555) 123-4567"),
    ("clients.csv", "primary_substance", "jane.roe@example.com"),
    ("clients.csv", "primary_substance", "12 Main St"),
    ("clients.csv", "gender", "1/5/88"),
]


@pytest.mark.parametrize("file,column,value", IDENTIFIER_LIKE)
def test_identifier_like_free_text_is_refused_without_echoing_it(live, file, column, value):
    src, db = live
    path = src / file
    set_field(path, 3, column, value)
    err = refused(src, db)
    p = only(err, "identifier-like-value")
    assert (p.file, p.line, p.column) == (file, 3, column)
    assert [q.rule for q in err.problems] == ["identifier-like-value"]
    report = err.report()
    assert value not in report and value.split()[-1] not in report, "the value must not be echoed"


def test_legitimate_free_text_values_load(live):
    """Free text stays free: payer, gender, substance and level values of every usual shape load."""
    src, db = live
    for line, (payer, level) in enumerate([("self_pay", "3.7-WM"), ("medicare", "1.0"), ("Commercial", "2.5")], 2):
        set_field(src / "enrollments.csv", line, "payer", payer)
        set_field(src / "enrollments.csv", line, "asam_level", level)
    for line, (gender, substance) in enumerate(
        [("non-binary", "opioids"), ("Female", "alcohol"), ("unknown", "opioid use disorder"), ("male", "stimulants")],
        2,
    ):
        set_field(src / "clients.csv", line, "gender", gender)
        set_field(src / "clients.csv", line, "primary_substance", substance)
    result = load(src, db, AS_OF)
    assert result.changed
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("select count(*) from clients where gender = 'non-binary'").fetchone()[0] == 1
        assert con.execute("select count(*) from enrollments where asam_level = '3.7-WM'").fetchone()[0] == 1
    finally:
        con.close()
