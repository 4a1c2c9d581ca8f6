"""The hash-chained audit log: every kind of tampering is found at its line; concurrent writers keep the chain."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_tools import run as cli

from outcomes.privacy import audit, audit_retention, audit_verify

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.UTC


def written(path: Path, n: int = 6) -> list[bytes]:
    for i in range(n):
        audit.write("page_view", f"user{i}", path, page="stepdown", params={"i": i})
    return path.read_bytes().split(b"\n")[:-1]


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def broken_at(path: Path) -> tuple[int, str]:
    state = audit_verify.verify(path)
    assert not state.ok, "tampering went unnoticed"
    return state.line, state.problem


def test_lines_carry_seq_and_the_previous_hash(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path, 3)
    records = [json.loads(x) for x in lines]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev"] == audit.GENESIS
    assert records[1]["prev"] == audit.sha256(lines[0]) and records[2]["prev"] == audit.sha256(lines[1])
    state = audit_verify.verify(path)
    assert state.ok and state.lines == 3 and state.last_seq == 3 and state.last_hash == audit.sha256(lines[2])


def test_edited_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    lines[2] = lines[2].replace(b'"user2"', b'"someone"')
    rewrite(path, lines)
    line, problem = broken_at(path)
    assert line == 3 and "changed" in problem


def test_edited_last_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    lines[-1] = lines[-1].replace(b'"user5"', b'"someone"')
    rewrite(path, lines)
    assert broken_at(path)[0] == 6


def test_deleted_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    rewrite(path, lines[:3] + lines[4:])
    line, problem = broken_at(path)
    assert line == 4 and "seq 4 missing" in problem


def test_reordered_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    lines[1], lines[2] = lines[2], lines[1]
    rewrite(path, lines)
    assert broken_at(path)[0] == 2


def test_inserted_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    rewrite(path, lines[:4] + [lines[1]] + lines[4:])
    line, problem = broken_at(path)
    assert line == 5 and "repeated, moved or inserted" in problem


def test_inserted_forged_line_with_the_right_seq(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    forged = json.dumps({"seq": 4, "prev": audit.sha256(lines[2]), "event": "page_view", "user": "x"}).encode()
    rewrite(path, lines[:3] + [forged] + lines[3:])
    assert broken_at(path)[0] == 5  # the real line 4 no longer follows


def test_truncated_mid_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    written(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 20])
    line, problem = broken_at(path)
    assert line == 6 and "truncated" in problem


def test_lines_cut_from_the_end(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    rewrite(path, lines[:4])
    line, problem = broken_at(path)
    assert line == 5 and "missing" in problem and "seq 6" in problem


def test_first_lines_removed(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    rewrite(path, lines[2:])
    line, problem = broken_at(path)
    assert line == 1 and "starts at seq 3" in problem


def test_emptied_log_and_unchained_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    written(path)
    path.write_bytes(b"")
    assert not audit_verify.verify(path).ok  # the head still records seq 6
    legacy = tmp_path / "legacy.jsonl"
    legacy.write_text('{"event":"earlier"}\n')
    audit.write("page_view", "a", legacy)
    assert broken_at(legacy)[0] == 1


def test_a_write_after_a_cut_line_still_starts_a_new_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    written(path, 2)
    with open(path, "ab") as f:
        f.write(b'{"seq":3,"prev":"ab')  # a write cut short by a crash
    audit.write("page_view", "after", path)
    assert json.loads(path.read_bytes().split(b"\n")[-2])["user"] == "after"
    assert broken_at(path)[0] == 3


def test_anchor_recorded_elsewhere(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    anchor = (4, audit.sha256(lines[3]))
    assert audit_verify.verify(path, anchor).ok
    # rewriting the whole chain from line 2 on (recomputing every hash and the head) is caught by the anchor
    records = [json.loads(x) for x in lines]
    path.unlink()
    audit.head_path(path).unlink()
    audit.append({k: v for k, v in records[0].items() if k not in audit.CHAIN}, path)
    for r in records[1:]:
        audit.append({k: v for k, v in r.items() if k not in audit.CHAIN} | {"user": "forged"}, path)
    assert audit_verify.verify(path).ok  # a consistent forgery...
    assert not audit_verify.verify(path, anchor).ok  # ...that the anchor exposes


def test_concurrent_threads_and_processes_keep_one_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    code = (
        "import sys; from outcomes.privacy import audit\n"
        "for i in range(150): audit.write('page_view', f'p{sys.argv[1]}', sys.argv[2], params={'i': i})\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(n), str(path)], cwd=ROOT) for n in range(3)]

    def writer(n):
        for i in range(100):
            audit.write("adhoc_sql", f"t{n}", path, sql="select " + "x, " * 500 + "1", outcome="ok", rows=i)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert p.wait(timeout=120) == 0
    state = audit_verify.verify(path)
    assert state.ok, state.summary()
    assert state.lines == 3 * 150 + 4 * 100 and state.last_seq == state.lines


def test_files_are_private(tmp_path):
    path = tmp_path / "new" / "deeper" / "audit.jsonl"
    audit.write("page_view", "a", path)
    for p in (path, audit.head_path(path), path.with_name(path.name + ".lock")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    for folder in (path.parent, path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_long_sql_is_never_cut(tmp_path):
    path = tmp_path / "audit.jsonl"
    sql = "/*" + "x" * 100_000 + "*/ select * from episodes"
    run = audit.adhoc_started("a", sql, path)
    audit.adhoc_finished("a", run, sql, "ok", path, rows=3)
    started, finished = audit.read(path)
    assert started["sql"] == sql and started["sql_sha256"] == audit.sha256(sql) and started["outcome"] == "started"
    assert finished["run"] == run and finished["sql_sha256"] == started["sql_sha256"] and "sql" not in finished


def test_helpers_for_runs_downloads_and_denials(tmp_path):
    path = tmp_path / "audit.jsonl"
    audit.catalog_run(
        "d@example.org", "stepdown_rate", {"window_days": 14}, ("Northside",), 12, 3, path, page="stepdown"
    )
    body = "month,n\n2025-01,20\n"
    audit.download("d@example.org", "stepdown_rate.csv", "csv", body, rows=1, path=path, query="stepdown_rate")
    audit.denied(
        "d@example.org",
        "site outside scope",
        requested=["Riverside"],
        allowed=("Northside",),
        path=path,
        page="stepdown",
    )
    run, dl, denial = audit.read(path)
    assert (run["event"], run["query"], run["sites"], run["rows"], run["suppressed"]) == (
        "query_run",
        "stepdown_rate",
        ["Northside"],
        12,
        3,
    )
    assert (dl["event"], dl["format"], dl["bytes"], dl["sha256"]) == (
        "export",
        "csv",
        len(body.encode()),
        audit.sha256(body.encode()),
    )
    assert (denial["event"], denial["requested"], denial["allowed"]) == ("denied", ["Riverside"], ["Northside"])


# --- rotation and retention -------------------------------------------------------------------------------


def test_rotation_continues_the_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    written(path, 3)
    moved = audit_retention.rotate(path, now=dt.datetime(2025, 1, 1, tzinfo=UTC))
    written(path, 2)
    assert moved.exists() and audit_verify.rotated(path) == [moved]
    first = json.loads(path.read_bytes().split(b"\n")[0])
    assert first["event"] == "log_rotated" and first["seq"] == 4
    assert first["prev"] == audit.sha256(moved.read_bytes().split(b"\n")[-2])
    state = audit_verify.verify(path)
    assert state.ok and state.lines == 6 and len(state.files) == 2
    lines = moved.read_bytes().split(b"\n")[:-1]  # tampering in a rotated file is still found
    rewrite(moved, lines[:1] + lines[2:])
    state = audit_verify.verify(path)
    assert not state.ok and state.file == moved.name and state.line == 2


def _dated(path: Path, when: dt.datetime, n: int = 2) -> None:
    for i in range(n):
        audit.append(audit.event("page_view", "u", now=when + dt.timedelta(days=i)), path)


def test_retention_deletes_only_files_whose_every_line_is_old(tmp_path):
    path = tmp_path / "audit.jsonl"
    now = dt.datetime(2032, 6, 1, tzinfo=UTC)
    _dated(path, dt.datetime(2024, 1, 1, tzinfo=UTC))  # 8 years old
    old = audit_retention.rotate(path, now=dt.datetime(2024, 2, 1, tzinfo=UTC))
    _dated(path, dt.datetime(2025, 1, 1, tzinfo=UTC))  # 7 years old
    _dated(path, dt.datetime(2027, 1, 1, tzinfo=UTC))  # 5 years old: this whole file stays
    mixed = audit_retention.rotate(path, now=dt.datetime(2027, 2, 1, tzinfo=UTC))
    _dated(path, dt.datetime(2020, 1, 1, tzinfo=UTC))  # after a younger file: kept, files go oldest first
    later = audit_retention.rotate(path, now=dt.datetime(2028, 2, 1, tzinfo=UTC))
    removed = audit_retention.prune(path, years=6, now=now)
    assert removed == [old.name] and not old.exists() and mixed.exists() and later.exists()
    state = audit_verify.verify(path)
    assert state.ok and any("retention" in n for n in state.notes), state.summary()
    pruned = [e for e in audit.read(path) if e["event"] == "log_pruned"]
    assert pruned[0]["file"] == old.name and pruned[0]["retention_years"] == 6
    assert audit_retention.prune(path, years=6, now=now) == []


def test_a_rotated_file_deleted_by_hand_is_found(tmp_path):
    path = tmp_path / "audit.jsonl"
    written(path, 2)
    first = audit_retention.rotate(path, now=dt.datetime(2025, 1, 1, tzinfo=UTC))
    written(path, 2)
    first.unlink()
    line, problem = broken_at(path)
    assert line == 1 and "without a retention record" in problem


def test_retention_setting(monkeypatch):
    assert audit.retention_years(env={}) == 6
    assert audit.retention_years(env={"OUTCOMES_AUDIT_RETENTION_YEARS": "7"}) == 7
    with pytest.raises(ValueError):
        audit.retention_years(env={"OUTCOMES_AUDIT_RETENTION_YEARS": "0"})


# --- the command line -------------------------------------------------------------------------------------


def test_cli_verify_reports_the_first_broken_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    lines = written(path)
    ok = cli("audit", "verify", "--log", path)
    assert ok.returncode == 0 and ok.stdout.startswith("audit log OK: 6 lines")
    digest = ok.stdout.rsplit("last hash ", 1)[1].strip()
    assert cli("audit", "verify", "--log", path, "--anchor", f"6:{digest}").returncode == 0
    lines[3] = lines[3].replace(b"stepdown", b"overview")
    rewrite(path, lines)
    bad = cli("audit", "verify", "--log", path)
    assert bad.returncode == 1 and bad.stderr.strip() == (
        f"audit log BROKEN at audit.jsonl line 4: {audit_verify.verify(path).problem}"
    )


def test_cli_rotate_and_prune(tmp_path):
    path = tmp_path / "audit.jsonl"
    written(path, 2)
    rotated = cli("audit", "rotate", "--log", path)
    assert rotated.returncode == 0 and "rotated" in rotated.stdout and len(audit_verify.rotated(path)) == 1
    pruned = cli("audit", "prune", "--log", path, "--years", "6")
    assert pruned.returncode == 0 and "removed 0 rotated file(s) older than 6 years" in pruned.stdout
    assert audit_verify.verify(path).ok


def test_cli_query_is_logged(tmp_path, demo_db_path):
    log = tmp_path / "audit.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "outcomes",
            "query",
            "stepdown_rate",
            "--db",
            str(demo_db_path),
            "--param",
            "window_days=30",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, OUTCOMES_AUDIT_LOG=str(log)),
    )
    assert result.returncode == 0, result.stderr
    (run,) = audit.read(log)
    assert (run["event"], run["query"], run["params"], run["sites"], run["outcome"]) == (
        "query_run",
        "stepdown_rate",
        {"window_days": "30"},
        "*",
        "ok",
    )
    assert run["rows"] > 0 and isinstance(run["suppressed"], int) and run["user"].startswith("cli:")
