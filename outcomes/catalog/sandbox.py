"""Ad-hoc SQL in its own process: a small pool of warm worker processes, each with hard limits.

Every ad-hoc statement (`python -m outcomes sql`, the Explore page) goes through `run`. A worker is a fresh
Python process (outcomes.catalog.child running outcomes.catalog.sql_worker) with a cap on its address space
(outcomes.catalog.limits); it opens the database read-only with the
hardened configuration (outcomes.db.HARDENED) plus `memory_limit`, `threads`, `max_temp_directory_size` and a
private temporary folder. The worker parses the statement itself, so nothing user-typed is parsed in the
server. It interrupts its own statement at the time limit; the parent enforces the same limit on the whole
call (parse, bind, column types, execution, fetch) and kills the worker one second later if it has not
answered. A killed worker is replaced in the background, so the next statement finds a warm one.

Results come back as Arrow IPC bytes under a size cap, with the DuckDB type of each column; suppression
(outcomes.catalog.adhoc) runs in the parent.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import dataclass, field

from outcomes.catalog import adhoc, runner
from outcomes.catalog.child import Child, ChildDied, ChildTimeout, ProtocolError
from outcomes.catalog.limits import ENV, Limits

DEFAULT_TIMEOUT = runner.DEFAULT_TIMEOUT
DEFAULT_MAX_ROWS = runner.DEFAULT_MAX_ROWS
GRACE = 1.0  # seconds after the time limit at which the parent kills a worker that has not answered
MAX_SQL_CHARS = 100_000  # a longer statement is refused unparsed (parsing 2 MB of brackets takes 9 s)
WORKERS = 2


class Stopped(runner.QueryTimeout):
    """The statement ran to its time limit: it stopped itself ("timeout") or its worker was killed ("killed")."""

    def __init__(self, seconds: float, limit: float, outcome: str):
        self.seconds, self.limit, self.outcome = seconds, limit, outcome
        super().__init__(f"stopped after {seconds:.1f} s, limit {limit:g} s")


class MemoryExceeded(adhoc.QueryFailed):
    """The statement needed more memory than its worker may have; the worker was replaced."""

    outcome = "memory"


class WorkerFailed(adhoc.QueryFailed):
    """The worker crashed, sent something malformed, or the result was over the size cap."""

    outcome = "error"


class Busy(WorkerFailed):
    """Every worker stayed busy for as long as the call could wait."""


@dataclass
class Stats:
    started: int = 0
    killed: int = 0
    start_seconds: list[float] = field(default_factory=list)


class Pool:
    """`size` warm workers with the same limits. Thread-safe: each call takes one idle worker for itself."""

    def __init__(self, size: int = WORKERS, limits: Limits | None = None, start_timeout: float = 60.0):
        self.size = max(1, int(size))
        self.limits = limits or Limits()
        self.start_timeout = start_timeout
        self.stats = Stats()
        self._cond = threading.Condition()
        self._idle: list[Child] = []
        self._all: set[Child] = set()
        self._starting = 0
        self._closed = False

    # --- workers ---

    def _spawn(self) -> Child:
        env = {"OUTCOMES_SANDBOX_CONFIG": _encode(self.limits.duckdb_config())}
        try:
            child = Child("outcomes.catalog.sql_worker:serve", self.limits.address_space_bytes, env, self.start_timeout)
        except (ChildDied, ChildTimeout, ProtocolError, OSError) as exc:
            raise WorkerFailed(f"could not start an ad-hoc SQL worker ({exc})") from None
        self.stats.started += 1
        self.stats.start_seconds.append(child.start_seconds)
        return child

    def _start_in_background(self) -> None:
        with self._cond:
            if self._closed or len(self._all) + self._starting >= self.size:
                return
            self._starting += 1

        def start():
            try:
                child = self._spawn()
            except WorkerFailed:
                child = None
            with self._cond:
                self._starting -= 1
                if child is not None:
                    if self._closed:
                        _discard(child)
                    else:
                        self._all.add(child)
                        self._idle.append(child)
                self._cond.notify_all()

        threading.Thread(target=start, name="sql-worker-start", daemon=True).start()

    def warm(self) -> Pool:
        """Start workers up to `size` in the background; returns at once."""
        for _ in range(self.size):
            self._start_in_background()
        return self

    def wait_warm(self, timeout: float = 60.0) -> bool:
        """Wait until `size` workers are idle (for tests and measurements)."""
        deadline = time.monotonic() + timeout
        self.warm()
        with self._cond:
            while len(self._idle) < self.size:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _acquire(self, wait: float) -> Child:
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerFailed("ad-hoc SQL is shutting down")
                while self._idle:
                    child = self._idle.pop()
                    if child.alive():
                        return child
                    self._all.discard(child)
                    _discard(child)
                if len(self._all) + self._starting < self.size:
                    self._starting += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy(f"every ad-hoc SQL worker is busy ({self.size}); try again in a moment")
                self._cond.wait(left)
        try:
            child = self._spawn()
        finally:
            with self._cond:
                self._starting -= 1
        with self._cond:
            self._all.add(child)
        return child

    def _release(self, child: Child, healthy: bool) -> None:
        with self._cond:
            if healthy and not self._closed and child.alive():
                self._idle.append(child)
                self._cond.notify_all()
                return
            self._all.discard(child)
            self._cond.notify_all()
        if child.alive():
            self.stats.killed += 1
        _discard(child)
        self._start_in_background()

    def pids(self) -> list[int]:
        """Process ids of the live workers; dead idle ones are dropped and replaced."""
        with self._cond:
            dead = [c for c in self._idle if not c.alive()]
            for child in dead:
                self._idle.remove(child)
                self._all.discard(child)
            alive = sorted(c.pid for c in self._all)
        for child in dead:
            _discard(child)
            self._start_in_background()
        return alive

    def close(self) -> None:
        """Kill every worker."""
        with self._cond:
            self._closed = True
            children = list(self._all)
            self._all.clear()
            self._idle.clear()
            self._cond.notify_all()
        for child in children:
            _discard(child)

    # --- one statement ---

    def run(
        self,
        sql: str,
        db_path: str | os.PathLike,
        raw: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_rows: int = DEFAULT_MAX_ROWS,
        wait: float | None = None,
    ) -> adhoc.AdhocResult:
        """Run one ad-hoc statement in a worker; suppressed unless `raw`.

        Raises adhoc.Refused (not one read-only statement), adhoc.QueryFailed (DuckDB's error in one line),
        Stopped (time limit), MemoryExceeded, WorkerFailed or Busy (waited `wait` seconds, default `timeout`,
        for a free worker). Whatever happens, the call returns within the time limit plus GRACE (plus the
        wait for a worker, and a worker's start when none is warm).
        """
        if not isinstance(sql, str):
            raise adhoc.Refused("refused: the statement must be text")
        if len(sql) > MAX_SQL_CHARS:
            raise adhoc.Refused(
                f"refused: the statement is {len(sql):,} characters, over the limit of {MAX_SQL_CHARS:,}"
            )
        if timeout is None or timeout <= 0 or max_rows is None or max_rows <= 0:
            raise ValueError("ad-hoc SQL needs a positive time limit and row cap")
        request = {
            "sql": sql,
            "db": str(db_path),
            "version": _version(db_path),
            "timeout": float(timeout),
            "max_rows": int(max_rows),
            "max_bytes": self.limits.max_result_bytes,
        }
        child = self._acquire(timeout if wait is None else wait)
        healthy = False
        started = time.monotonic()
        try:
            child.send(request)
            header, payload = child.receive(started + timeout + GRACE, self.limits.max_result_bytes)
            healthy = not header.get("exit")
        except ChildTimeout:
            raise Stopped(time.monotonic() - started, timeout, "killed") from None
        except ChildDied as exc:
            if exc.signal in (6, 7, 9):  # SIGABRT (allocation failed), SIGBUS, SIGKILL (the kernel's OOM killer)
                raise MemoryExceeded(self._memory_message()) from None
            raise WorkerFailed(f"the ad-hoc SQL worker {exc}") from None
        except ProtocolError as exc:
            raise WorkerFailed(f"the ad-hoc SQL worker sent a bad answer ({exc})") from None
        finally:
            self._release(child, healthy)
        return self._answer(header, payload, raw, timeout)

    def _memory_message(self) -> str:
        return f"used more than the memory limit ({self.limits.memory_limit}); nothing was returned"

    def _answer(self, header: dict, payload: bytes, raw: bool, timeout: float) -> adhoc.AdhocResult:
        error = header.get("error")
        message = str(header.get("message") or "")[:500]
        if error == "refused":
            raise adhoc.Refused(message)
        if error == "timeout":
            raise Stopped(float(header.get("seconds") or timeout), timeout, "timeout")
        if error == "memory":
            raise MemoryExceeded(self._memory_message())
        if error == "too_large":
            raise WorkerFailed(
                f"the result is over {self.limits.max_result_bytes / 2**20:g} MB; select fewer columns or rows"
            )
        if error:
            raise adhoc.QueryFailed(message or "the statement failed")
        import pandas as pd
        import pyarrow as pa

        try:
            table = pa.ipc.open_stream(payload).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise WorkerFailed(f"the ad-hoc SQL worker sent a bad answer ({exc})") from None
        names = [str(n) for n in header.get("columns", table.column_names)]
        columns = {i: table.column(i).to_pylist() for i in range(table.num_columns)}
        df = pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows), columns=range(table.num_columns))
        df = df.astype(object) if table.num_columns else df
        df.columns = names[: table.num_columns]
        return adhoc.result(
            df,
            [str(t) for t in header.get("types", [])],
            str(header.get("sql", "")),
            raw,
            bool(header.get("truncated")),
            float(header.get("seconds") or 0.0),
        )


def _discard(child: Child) -> None:
    """Kill a worker now and reap it on a thread of its own: a killed process holding a gigabyte can take a while
    to be freed, and the caller's answer ("stopped after N s") must not wait for that."""
    if child.alive():
        try:
            child.proc.kill()
        except ProcessLookupError:
            pass
    threading.Thread(target=child.kill, name="reap-sql-worker", daemon=True).start()


def _version(db_path) -> list | None:
    from outcomes.ingest.db import DataVersion, NoDatabase

    try:
        v = DataVersion.of(db_path)
    except NoDatabase:
        return None
    return [v.path, v.inode, v.mtime_ns]


def _encode(config: dict) -> str:
    import json

    return json.dumps(config)


_default: Pool | None = None
_default_lock = threading.Lock()


def default_pool() -> Pool:
    """The process-wide pool ($OUTCOMES_SQL_WORKERS workers, limits from the environment), warmed on first use."""
    global _default
    with _default_lock:
        if _default is None:
            size = int(os.environ.get(ENV["workers"]) or WORKERS)
            _default = Pool(size, Limits.from_env()).warm()
            atexit.register(_default.close)
        return _default


def run(
    sql: str,
    db_path: str | os.PathLike,
    *,
    raw: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    max_rows: int = DEFAULT_MAX_ROWS,
    pool: Pool | None = None,
    wait: float | None = None,
    user: str | None = None,
    log: str | os.PathLike | None = None,
    **who,
) -> adhoc.AdhocResult:
    """Run one ad-hoc statement in a worker of `pool` (default: the process-wide one), waiting up to `wait`
    seconds (default: the time limit) for a free worker.

    With `user`, the statement is written to the audit log (`log`, default audit.log_path()) in full with its
    SHA-256 before anything runs, and its outcome after: ok, refused, error, timeout, killed or memory. `who`
    adds fields to both events (role, sites, page). An audit log that cannot be written stops the call
    before the statement runs (audit.AuditError).
    """
    from outcomes.privacy import audit

    pool = pool or default_pool()
    run_id = audit.adhoc_started(user, sql, path=log, **who) if user is not None else None

    def finish(outcome: str, **details) -> None:
        if run_id is not None:
            audit.adhoc_finished(user, run_id, sql, outcome, path=log, **details, **who)

    try:
        result = pool.run(sql, db_path, raw=raw, timeout=timeout, max_rows=max_rows, wait=wait)
    except adhoc.Refused as exc:
        finish("refused", error=str(exc))
        raise
    except Stopped as exc:
        finish(exc.outcome, seconds=round(exc.seconds, 3), error=str(exc))
        raise
    except MemoryExceeded as exc:
        finish("memory", error=str(exc))
        raise
    except WorkerFailed as exc:
        finish("error", error=str(exc)[:200])
        raise
    except adhoc.QueryFailed as exc:
        finish("error", error=str(exc).split(":", 1)[0].strip()[:80])  # DuckDB's message can quote a value
        raise
    finish(
        "ok",
        rows=len(result.data),
        seconds=round(result.seconds, 3),
        truncated=result.truncated,
        suppressed=int(result.mask.to_numpy().sum()),
        raw=raw,
    )
    return result
