"""Ad-hoc SQL in worker processes (outcomes.catalog.sandbox): each attack ends within its bound and the next call works.

Real worker processes, a real demo database (1,500 clients), real kills. Times are bounds from the issue
(limit + 2 s), not speed measurements.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from outcomes.catalog import adhoc, sandbox
from outcomes.ingest.loader import load
from outcomes.privacy import audit, audit_verify

ROOT = Path(__file__).resolve().parents[1]
SORT_BOMB = "select len(list_sort(list_reverse(range(20000000))))"  # folded while binding: 20 s in-process
STRING_BOMB = "select sum(len(l)) from (select list(repeat('x',100000000)) l from range(40))"  # 4.4 GB in-process
RUNAWAY = "select count(*) from range(10000000000) a, range(1000) b"


@pytest.fixture(scope="module")
def pool():
    p = sandbox.Pool(2)
    assert p.wait_warm(120), "workers did not start"
    yield p
    p.close()


def timed(fn, *args, **kwargs):
    started = time.monotonic()
    try:
        return fn(*args, **kwargs), None, time.monotonic() - started
    except Exception as exc:
        return None, exc, time.monotonic() - started


def works(pool, db) -> None:
    result = pool.run("select 42 as answer, 'ok' as status", db)
    assert result.data["status"].tolist() == ["ok"]


# --- the repros of the issue ------------------------------------------------------------------------------


def one_clear_line(exc, limit) -> None:
    """What a stopped statement says: how long it ran against its limit, or that it ran out of memory."""
    text = str(exc)
    assert "\n" not in text
    if isinstance(exc, sandbox.Stopped):
        assert text == f"stopped after {exc.seconds:.1f} s, limit {limit:g} s"
    else:
        assert isinstance(exc, sandbox.MemoryExceeded) and text.startswith("used more than the memory limit (1GB)")


def test_constant_folding_is_stopped_within_the_bound(pool, demo_db_path):
    # Folded while binding, where an interrupt is seen only now and then: the worker stops itself, is killed at
    # the limit + 1 s, or its address-space cap stops the allocation first (on an idle machine at about 1 s).
    _, exc, seconds = timed(pool.run, SORT_BOMB, demo_db_path, timeout=2)
    assert seconds < 2 + 2, seconds
    one_clear_line(exc, 2)
    works(pool, demo_db_path)


def test_a_worker_that_does_not_answer_is_killed_one_second_after_the_limit(pool, demo_db_path):
    assert pool.wait_warm(60)
    before = set(pool.pids())
    hashing = "select length(regexp_replace(repeat('ab', 25000000), '(a|b)', 'cc', 'g'))"  # one constant, folded in one call: no interrupt
    _, exc, seconds = timed(pool.run, hashing, demo_db_path, timeout=0.5)
    assert isinstance(exc, sandbox.Stopped) and exc.outcome == "killed", exc
    assert 0.5 + sandbox.GRACE <= seconds < 0.5 + 2, seconds
    assert str(exc) == f"stopped after {exc.seconds:.1f} s, limit 0.5 s"
    assert pool.wait_warm(60) and len(before - set(pool.pids())) == 1  # that worker is gone, another took its place
    works(pool, demo_db_path)


def test_string_bomb_stops_within_the_bound(pool, demo_db_path):
    before = pool.pids()
    _, exc, seconds = timed(pool.run, STRING_BOMB, demo_db_path, timeout=10)
    assert seconds < 10 + 2
    one_clear_line(exc, 10)
    assert pool.pids() != before or isinstance(exc, sandbox.Stopped)  # a worker out of memory is replaced
    works(pool, demo_db_path)


def test_string_bomb_with_a_short_limit(pool, demo_db_path):
    _, exc, seconds = timed(pool.run, STRING_BOMB, demo_db_path, timeout=2)
    assert seconds < 2 + 2, (exc, seconds)
    one_clear_line(exc, 2)
    works(pool, demo_db_path)


def test_runaway_stops_itself_and_the_worker_stays(pool, demo_db_path):
    assert pool.wait_warm(60)
    pids = pool.pids()
    _, exc, seconds = timed(pool.run, RUNAWAY, demo_db_path, timeout=1)
    assert isinstance(exc, sandbox.Stopped) and exc.outcome == "timeout" and seconds < 1 + 2
    assert str(exc) == f"stopped after {exc.seconds:.1f} s, limit 1 s"
    assert pool.pids() == pids  # interrupted cleanly: no worker was killed
    works(pool, demo_db_path)


def test_memory_limit_of_duckdb_is_set(pool, demo_db_path):
    got = pool.run(
        "select current_setting('memory_limit') as m, current_setting('threads') as t", demo_db_path, raw=True
    ).data
    assert got["t"].tolist() == [1] or got["t"].tolist() == ["1"]
    assert "953.6 MiB" in str(got["m"].iloc[0]) or "1.0 GB" in str(got["m"].iloc[0]), got["m"].iloc[0]


def test_hardened_settings_cannot_be_changed(pool, demo_db_path):
    for sql in (
        "select * from read_csv('/etc/passwd')",
        "select * from glob('/etc/*')",
        "select * from read_text('/etc/hostname')",
        "select * from read_parquet('https://example.com/x')",
    ):
        _, exc, _ = timed(pool.run, sql, demo_db_path)
        assert isinstance(exc, adhoc.QueryFailed) and "switched off" in str(exc), (sql, exc)
    _, exc, _ = timed(pool.run, "select * from '/etc/passwd'", demo_db_path)  # no scan of a file by its name
    assert isinstance(exc, adhoc.QueryFailed) and "does not exist" in str(exc), exc
    for sql in (
        "set memory_limit = '20GB'",
        "set enable_external_access = true",
        "reset threads",
        "pragma memory_limit='20GB'",
    ):
        _, exc, _ = timed(pool.run, sql, demo_db_path)
        assert isinstance(exc, adhoc.Refused), (sql, exc)


def test_worker_has_an_address_space_cap(pool):
    for pid in pool.pids():
        limits = Path(f"/proc/{pid}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
        assert str(sandbox.Limits().address_space_bytes) in line, line
        core = next(x for x in limits.splitlines() if x.startswith("Max core file size"))
        assert core.split()[4] == "0", core  # no core dump with patient data in it


def test_statement_is_parsed_in_the_worker(pool, demo_db_path):
    deep = "select " + "(" * 40_000 + "1" + ")" * 40_000  # parsing this in the server would block it
    _, exc, seconds = timed(pool.run, deep, demo_db_path, timeout=2)
    assert isinstance(exc, adhoc.QueryFailed) and seconds < 2 + 2, exc
    _, exc, _ = timed(pool.run, "select 1 " + "-" * sandbox.MAX_SQL_CHARS, demo_db_path)
    assert isinstance(exc, adhoc.Refused) and "over the limit" in str(exc)


def test_result_size_is_capped(demo_db_path):
    small = sandbox.Pool(1, sandbox.Limits(max_result_bytes=200_000))
    try:
        _, exc, _ = timed(small.run, "select repeat('x', 10000) as s from range(100)", demo_db_path)
        assert isinstance(exc, sandbox.WorkerFailed) and "over" in str(exc), exc
        assert small.run("select 1 as one", demo_db_path).data.shape == (1, 1)
    finally:
        small.close()


def test_a_worker_killed_from_outside_is_replaced(pool, demo_db_path):
    victim = pool.pids()[0]
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.2)
    for _ in range(3):  # whichever worker a call takes, it gets an answer
        works(pool, demo_db_path)
    assert victim not in pool.pids()


def test_busy_pool_refuses_after_its_wait(demo_db_path):
    one = sandbox.Pool(1)
    try:
        one.wait_warm(60)
        worker = threading.Thread(target=lambda: timed(one.run, RUNAWAY, demo_db_path, timeout=3))
        worker.start()
        time.sleep(0.5)
        _, exc, seconds = timed(one.run, "select 1", demo_db_path, wait=0.5)
        assert isinstance(exc, sandbox.Busy) and seconds < 2, exc
        worker.join()
        assert one.run("select 1 as one", demo_db_path).data.shape == (1, 1)
    finally:
        one.close()


def test_a_reload_is_seen_by_warm_workers(pool, tmp_path):
    path = tmp_path / "live.duckdb"
    load(ROOT / "tests" / "fixtures" / "headline", path)
    assert pool.run("select count(*) as n from clients", path, raw=True).data["n"].tolist() == [20]
    src = tmp_path / "src"
    shutil.copytree(ROOT / "tests" / "fixtures" / "headline", src)
    lines = (src / "transitions.csv").read_text().splitlines()
    (src / "transitions.csv").write_text("\n".join(lines[:-1]) + "\n")
    load(src, path)
    assert pool.run("select count(*) as n from transitions", path, raw=True).data["n"].tolist() == [4]


def test_no_database(pool, tmp_path):
    _, exc, _ = timed(pool.run, "select 1", tmp_path / "none.duckdb")
    assert isinstance(exc, adhoc.QueryFailed) and "no database" in str(exc)
    _, exc, _ = timed(pool.run, "drop table x", tmp_path / "none.duckdb")
    assert isinstance(exc, adhoc.Refused)  # refused before any database is opened


# --- suppression of what comes back -----------------------------------------------------------------------

HIDDEN = {  # each a count of 5 (or a small value) in another form: hidden unless raw
    "varchar": "count(*)::varchar",
    "float": "count(*)::double",
    "decimal": "count(*)::decimal(10, 2)",
    "string": "'7'",
    "padded": "lpad(count(*)::varchar, 4, '0')",
    "spaces": "'  7  '",
    "scientific": "'1e1'",
    "arabic digits": "'٥'",
    "full-width": "'５'",
    "circled": "'⑤'",
    "in text": "'n=' || count(*)",
    "json": "json_object('n', count(*))::varchar",
    "list": "[count(*)]",
    "list of text": "[count(*)::varchar]",
    "struct": "{'n': count(*)}",
    "map": "map {'n': count(*)}",
    "interval": "to_days(count(*)::int)",
    "negative": "-count(*)",
    "blob": "count(*)::varchar::blob",
}


@pytest.mark.parametrize("expr", list(HIDDEN.values()), ids=list(HIDDEN))
def test_a_count_in_any_form_is_hidden(pool, demo_db_path, expr):
    sql = f"select 'x' as k, {expr} as v from range(5)"
    shown = pool.run(sql, demo_db_path)
    assert shown.mask["v"].all() and pd.isna(shown.data["v"].iloc[0]), shown.data
    raw = pool.run(sql, demo_db_path, raw=True)
    assert not raw.mask.to_numpy().any() and raw.data["v"].iloc[0] is not None


@pytest.mark.parametrize(
    "expr, value",
    [
        ("'Northside'", "Northside"),
        ("'iop'", "iop"),
        ("count(*) * 0", 0),
        ("count(*)", 50),
        ("count(*)::varchar", None),
        ("date '2025-01-05'", None),
        ("true", True),
        ("['a', 'b']", None),
    ],
)
def test_what_is_shown(pool, demo_db_path, expr, value):
    sql = f"select {expr} as v from range(50)"
    result = pool.run(sql, demo_db_path)
    assert not result.mask["v"].any(), result.data
    if value is not None:
        assert result.data["v"].iloc[0] == value


def test_a_small_count_hides_the_measures_on_its_row(pool, demo_db_path):
    sql = "select * from (values ('a', '5', 0.25, 12.0), ('b', '50', 0.5, 12.0)) t(k, n_text, share, mean) order by k"
    result = pool.run(sql, demo_db_path)
    assert result.mask.loc[0].tolist() == [False, True, True, True]
    assert result.mask.loc[1].tolist() == [False, False, False, False]


def test_one_line_errors(pool, demo_db_path):
    for sql in ("selec 1", "select * from nosuch", "select $x", "select 1; select 2", "copy (select 1) to '/tmp/x'"):
        _, exc, _ = timed(pool.run, sql, demo_db_path)
        assert isinstance(exc, adhoc.QueryFailed | adhoc.Refused) and "\n" not in str(exc) and str(exc), sql


# --- the audit record -------------------------------------------------------------------------------------


def test_logged_before_it_runs_then_its_outcome(pool, demo_db_path, tmp_path):
    log = tmp_path / "audit.jsonl"
    hidden = "select 1 as x /*" + " " * 50_000 + "*/ , count(*) as n from episodes"
    sandbox.run(hidden, demo_db_path, pool=pool, user="analyst@example.org", log=log, role="analyst")
    with pytest.raises((sandbox.Stopped, sandbox.MemoryExceeded)):
        sandbox.run(SORT_BOMB, demo_db_path, timeout=1, pool=pool, user="analyst@example.org", log=log)
    with pytest.raises(adhoc.Refused):
        sandbox.run("drop table episodes", demo_db_path, pool=pool, user="analyst@example.org", log=log)
    events = [e for e in audit.read(log) if e["event"] == "adhoc_sql"]
    assert [e["outcome"] for e in events] == ["started", "ok", "started", events[3]["outcome"], "started", "refused"]
    assert events[3]["outcome"] in ("timeout", "killed", "memory")
    assert events[0]["sql"] == hidden and events[0]["sql_sha256"] == audit.sha256(hidden)  # never cut
    assert events[0]["run"] == events[1]["run"] and events[1]["rows"] == 1 and events[0]["role"] == "analyst"
    assert events[3].get("seconds", 0) < 1 + 2
    assert audit_verify.verify(log).ok


def test_unwritable_log_stops_the_statement(pool, demo_db_path, tmp_path):
    taken = tmp_path / "audit.jsonl"
    taken.mkdir()
    with pytest.raises(audit.AuditError):
        sandbox.run("select 1", demo_db_path, pool=pool, user="a", log=taken)


def _workers_of(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"outcomes.catalog.child" in cmd:
                out.append(int(proc.name))
    return out


def test_a_killed_server_still_leaves_the_started_line(demo_db_path, tmp_path):
    log = tmp_path / "audit.jsonl"
    cli = subprocess.Popen(
        [sys.executable, "-m", "outcomes", "sql", RUNAWAY, "--db", str(demo_db_path), "--timeout", "60"],
        cwd=ROOT,
        env=dict(os.environ, OUTCOMES_AUDIT_LOG=str(log)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (log.exists() and _workers_of(cli.pid)):
        time.sleep(0.1)
    workers = _workers_of(cli.pid)
    assert workers, "the statement never started"
    time.sleep(0.5)
    cli.kill()
    cli.wait()
    events = [e for e in audit.read(log) if e["event"] == "adhoc_sql"]
    assert [(e["outcome"], e["sql"]) for e in events] == [("started", RUNAWAY)]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}").exists() for w in workers), "the worker outlived its parent"


def test_cli_repro_fails_in_one_line(demo_db_path, tmp_path):
    log = tmp_path / "audit.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "outcomes", "sql", SORT_BOMB, "--db", str(demo_db_path), "--timeout", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, OUTCOMES_AUDIT_LOG=str(log)),
    )
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    stopped = result.stderr.startswith("error: stopped after ") and result.stderr.strip().endswith("limit 2 s")
    assert stopped or result.stderr.startswith("error: used more than the memory limit"), result.stderr
    outcomes = [(e["outcome"], e["user"].startswith("cli:")) for e in audit.read(log) if e["event"] == "adhoc_sql"]
    assert outcomes[0] == ("started", True) and len(outcomes) == 2 and outcomes[1][1]
    assert outcomes[1][0] in (("timeout", "killed") if stopped else ("memory",))
