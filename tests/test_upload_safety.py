"""Uploads cannot take the server down: each malformed file ends as a refusal naming it, from a child process
with a memory cap; the live database is unchanged, the caller carries on, and the refusal is recorded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import threading
import time
from pathlib import Path

import duckdb
import pytest

from outcomes.ingest import uploads
from outcomes.ingest.loader import load
from outcomes.ingest.problems import LoadError

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "tests" / "fixtures" / "headline"


@pytest.fixture
def case(tmp_path):
    """(source folder to break, live database, record file)."""
    src = tmp_path / "src"
    shutil.copytree(GOOD, src)
    live = tmp_path / "live.duckdb"
    load(GOOD, live)
    return src, live, tmp_path / "refused-loads.jsonl"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refused(src: Path, live: Path, record: Path, **kwargs) -> LoadError:
    before = digest(live)
    with pytest.raises(LoadError) as err:
        uploads.load(src, live, record=record, user="admin@example.org", **kwargs)
    assert digest(live) == before, "a refused upload changed the live database"
    assert uploads.load(GOOD, src.parent / "after.duckdb").data_through  # and the next load works
    return err.value


def _header(path: Path, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([new] + lines[1:]))


def _rows(path: Path, fn) -> None:
    lines = path.read_bytes().split(b"\n")
    path.write_bytes(b"\n".join([lines[0]] + [fn(x) if x else x for x in lines[1:]]))


def cr_in_header(src):
    p = src / "clients.csv"
    _header(p, p.read_bytes().split(b"\n")[0].replace(b",", b"\rx,", 1))  # _csv.Error in the loader, before


def truncated_parquet(src):
    con = duckdb.connect()
    con.execute(
        f"copy (select * from read_csv('{src / 'attendance.csv'}')) to '{src / 'attendance.parquet'}' (format parquet)"
    )
    (src / "attendance.csv").unlink()
    data = (src / "attendance.parquet").read_bytes()
    (src / "attendance.parquet").write_bytes(data[: len(data) // 2])


def invalid_utf8(src):
    _rows(src / "enrollments.csv", lambda x: x.replace(b",iop,", b",i\xffop,"))


def nul_byte(src):
    _rows(src / "clients.csv", lambda x: x.replace(b",female,", b",fe\x00male,"))


def ten_thousand_columns(src):
    p = src / "attendance.csv"
    header = p.read_bytes().split(b"\n")[0]
    _header(p, header + b"".join(b",extra%d" % i for i in range(10_000)))
    _rows(p, lambda x: x + b"," * 10_000)


def five_mb_line(src):
    p = src / "clients.csv"
    lines = p.read_bytes().split(b"\n")
    lines[2] += b"y" * 5_000_000
    p.write_bytes(b"\n".join(lines))


def duplicate_header(src):
    p = src / "clients.csv"
    header = p.read_bytes().split(b"\n")[0]
    _header(p, header + b"," + header.split(b",")[1])
    _rows(p, lambda x: x + b",x")


def empty_file(src):
    (src / "transitions.csv").write_bytes(b"")


def header_only(src):
    p = src / "transitions.csv"
    p.write_bytes(p.read_bytes().split(b"\n")[0] + b"\n")


MALFORMED = {  # name: (break it, the file named, the rule)
    "bare CR in a header name": (cr_in_header, "clients.csv", "bad-header"),
    "truncated Parquet": (truncated_parquet, "attendance.parquet", "unreadable"),
    "invalid UTF-8": (invalid_utf8, "enrollments.csv", "invalid-encoding"),
    "NUL byte": (nul_byte, "clients.csv", "nul-byte"),
    "10k columns": (ten_thousand_columns, "attendance.csv", "too-many-header-columns"),
    "5 MB line": (five_mb_line, "clients.csv", "line-size-over-maximum"),
    "duplicate header": (duplicate_header, "clients.csv", "duplicate-column"),
    "empty file": (empty_file, "transitions.csv", "empty-file"),
    "header only": (header_only, "transitions.csv", "no-rows"),
}


@pytest.mark.parametrize("name", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_upload_is_refused_naming_the_file(case, name):
    src, live, record = case
    breaker, file, rule = MALFORMED[name]
    breaker(src)
    err = refused(src, live, record)
    hits = [p for p in err.problems if p.rule == rule]
    assert hits and all(p.file == file for p in hits), err.report()
    assert "\n" not in hits[0].message and file in str(hits[0])
    (entry,) = uploads.refused_loads(record)
    assert entry["user"] == "admin@example.org" and entry["rules"][rule] >= 1 and entry["by_file"][file][rule] >= 1
    names = {f["name"]: f for f in entry["files"]}
    assert names[file]["sha256"] == digest(src / file) and names[file]["bytes"] == (src / file).stat().st_size
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


def test_the_record_holds_no_values(case):
    src, live, record = case
    _rows(src / "enrollments.csv", lambda x: x.replace(b",iop,", b",SECRET-VALUE-42,"))
    refused(src, live, record)
    text = record.read_text()
    assert "SECRET-VALUE-42" not in text and "allowed-values" in text
    assert set(json.loads(text.splitlines()[0])) == {"time", "user", "files", "problems", "rules", "by_file"}


def test_refusals_are_listed_newest_first(case):
    src, live, record = case
    empty_file(src)
    refused(src, live, record)
    (src / "transitions.csv").write_bytes((GOOD / "transitions.csv").read_bytes())
    nul_byte(src)
    refused(src, live, record)
    listed = uploads.refused_loads(record)
    assert [list(e["rules"]) for e in listed] == [["nul-byte"], ["empty-file"]]


def test_the_load_runs_in_a_capped_child(case):
    src, live, record = case
    seen = {}

    def progress(fraction, message):
        for proc in Path("/proc").iterdir():  # the child that reads the files: this process's own child
            if proc.name.isdigit() and proc.name not in seen:
                try:
                    parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    cmd = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if parent == os.getpid() and b"outcomes.ingest.uploads:serve_load" in cmd:
                    seen[proc.name] = (proc / "limits").read_text()

    result = uploads.load(src, src.parent / "new.duckdb", progress=progress, address_space=3 << 30)
    assert result.changed and result.rows["clients"] == 20
    (limits,) = seen.values()
    line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
    assert str(3 << 30) in line


def test_a_child_that_dies_is_a_refusal_naming_its_file(case):
    src, live, record = case
    ten_thousand_columns(src)  # any file: the child is killed while it reads attendance
    before = digest(live)
    killed, seen = [], []

    def progress(fraction, message):
        seen.append(message)
        if "attendance" in message and not killed:
            for proc in Path("/proc").iterdir():
                if proc.name.isdigit():
                    try:
                        parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                        cmd = (proc / "cmdline").read_bytes()
                    except OSError:
                        continue
                    if parent == os.getpid() and b"serve_load" in cmd:
                        os.kill(int(proc.name), signal.SIGKILL)  # as the kernel does to a process out of memory
                        killed.append(proc.name)

    with pytest.raises(LoadError) as err:
        uploads.load(src, live, progress=progress, record=record)
    (problem,) = err.value.problems
    # the file named is the one the child was reading when it died: attendance, or the next if it got that far
    mentioned = [m for m in seen if "attendance" in m or "transitions" in m]
    named = "transitions.csv" if "transitions" in mentioned[-1] else "attendance.csv"
    assert killed and problem.file == named and problem.rule == "validation-stopped"
    assert "memory limit" in problem.message and digest(live) == before
    assert uploads.refused_loads(record)[0]["rules"] == {"validation-stopped": 1}


def test_too_little_memory_is_a_refusal_not_a_crash(case):
    src, live, record = case
    err = refused(src, live, record, address_space=64 << 20)  # not enough even to start Python's imports
    assert [p.rule for p in err.problems] == ["validation-stopped"]


def test_uploads_from_several_threads(case, tmp_path):
    """Loads of uploads from server threads at once: each answers for itself."""
    src, live, record = case
    nul_byte(src)
    results = {}

    def run(n):
        try:
            results[n] = uploads.load(GOOD if n % 2 else src, tmp_path / f"db{n}.duckdb", record=record).changed
        except LoadError as exc:
            results[n] = exc.problems[0].rule

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {0: "nul-byte", 1: True, 2: "nul-byte", 3: True}, results
    assert time.monotonic() - started < 120
