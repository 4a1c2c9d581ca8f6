"""The audit log: one JSON object per line, hash-chained, appended, never rewritten. No Streamlit here.

Each event records who, when, where and what was asked (query name, parameters, row counts), never result
rows. Each line starts with its sequence number and the SHA-256 of the line before it (`"seq"`, `"prev"`; the
first line's `prev` is 64 zeros), so a line that is edited, removed, moved or inserted breaks the chain, and
`verify` names the first broken line. A small head file beside the log (`audit.jsonl.head`) holds the last
sequence number and hash, so lines cut from the end are noticed too.

Writers (server threads, other processes, the CLI) take an exclusive `flock` on `audit.jsonl.lock` around
read-last-line + append + head update, so the chain stays whole under concurrent writers; each line is one
write() to a file opened with O_APPEND. Files and folders are created readable by the server's user only.

`rotate` starts a new file whose first line carries on the chain from the old file's last line; `prune`
removes rotated files whose every line is older than the retention period (default 6 years), writing the
removed file's last hash into the current log so that the chain stays verifiable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from outcomes.paths import ROOT
from outcomes.privacy import deploy

DEFAULT_LOG = ROOT / "data" / "audit.jsonl"
LOG_ENV = "OUTCOMES_AUDIT_LOG"
FSYNC_ENV = "OUTCOMES_AUDIT_FSYNC"
RETENTION_ENV = "OUTCOMES_AUDIT_RETENTION_YEARS"
RETENTION_YEARS = 6
EVENTS = (
    "page_view",
    "export",
    "adhoc_sql",
    "denied",
    "data_load",
    "login",
    "query_run",
    "log_rotated",
    "log_pruned",
    "email_sent",
)
MAX_TEXT = 20_000  # characters kept of a free-text field; ad-hoc SQL (`sql`) is never cut
MAX_ITEMS = 100  # most values in one list or mapping (sites, payers...); a longer one is refused
UNCUT = frozenset({"sql"})
GENESIS = "0" * 64
CHAIN = ("seq", "prev")
_ROTATED = re.compile(r"^(?P<stem>.+)\.(?P<stamp>\d{8}T\d{12}Z)(?P<suffix>\.[^.]*)$")


class AuditError(Exception):
    """The event could not be written."""


def log_path(configured: str | os.PathLike | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """$OUTCOMES_AUDIT_LOG, else `configured` (the `audit_log` secret), else data/audit.jsonl; relative to the repo."""
    path = Path(env.get(LOG_ENV) or configured or DEFAULT_LOG)
    return path if path.is_absolute() else ROOT / path


def retention_years(env: Mapping[str, str] = os.environ) -> int:
    """$OUTCOMES_AUDIT_RETENTION_YEARS, else 6; never less than 1."""
    years = int(env.get(RETENTION_ENV) or RETENTION_YEARS)
    if years < 1:
        raise ValueError(f"{RETENTION_ENV} must be at least 1 year, not {years}")
    return years


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def _plain(value, where: str, nested: bool = False):
    """A JSON-ready copy of a value: a scalar, or a short list or mapping of scalars; never a table or its rows."""
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        if nested or len(value) > MAX_ITEMS:
            _refuse(where)
        if isinstance(value, Mapping):
            return {str(k): _plain(v, f"{where}.{k}", nested=True) for k, v in value.items()}
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_plain(v, where, nested=True) for v in items]
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, dt.date):
        return value.isoformat()
    _refuse(where)


def _refuse(where: str):
    raise TypeError(f"audit {where}: only scalars and short lists or mappings of them are logged, never tables or rows")


def event(
    kind: str,
    user: str,
    *,
    page: str | None = None,
    query: str | None = None,
    params: Mapping | None = None,
    rows: int | None = None,
    now: dt.datetime | None = None,
    **fields,
) -> dict:
    """The record for one event: time (UTC), event, user, page, query, params, rows and any scalar `fields`."""
    if kind not in EVENTS:
        raise ValueError(f"unknown audit event {kind!r} (one of {', '.join(EVENTS)})")
    record = {
        "time": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="milliseconds"),
        "event": kind,
        "user": user,
        "page": page,
        "query": query,
        "params": {str(k): _plain(v, f"params.{k}") for k, v in (params or {}).items()},
        "rows": None if rows is None else int(rows),
    }
    for key, value in fields.items():
        if key in record or key in CHAIN:
            raise ValueError(f"audit field {key!r} is reserved")
        record[key] = value if key in UNCUT and isinstance(value, str) else _plain(value, key)
    return record


# --- files --------------------------------------------------------------------------------------------------


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def head_path(path: Path) -> Path:
    """The head file: the last sequence number and hash written to the log at `path`."""
    return path.with_name(path.name + ".head")


@contextlib.contextmanager
def _locked(path: Path, shared: bool = False):
    fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _tail(fd: int) -> tuple[bytes | None, bool]:
    """The last line of the open file (without its newline) and whether it ended with a newline."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, True
    complete = os.pread(fd, 1, size - 1) == b"\n"
    end = size - 1 if complete else size
    buf, pos = b"", end
    while pos > 0:
        start = max(0, pos - 65536)
        buf = os.pread(fd, pos - start, start) + buf
        pos = start
        cut = buf.rfind(b"\n")
        if cut >= 0:
            return buf[cut + 1 :], complete
    return buf, complete


def _read_head(path: Path) -> dict | None:
    try:
        data = json.loads(head_path(path).read_bytes())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("seq"), int) and isinstance(data.get("hash"), str):
        return data
    return None


def _write_head(path: Path, seq: int, digest: str) -> None:
    data = json.dumps({"seq": seq, "hash": digest, "file": path.name}).encode()
    fd = os.open(head_path(path), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _encode(record: Mapping) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _append_locked(path: Path, record: Mapping, fsync: bool) -> dict:
    """Append one chained line; the caller holds the lock. Returns the record with its seq and prev."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        last, complete = _tail(fd)
        head = _read_head(path)
        if last is None:
            seq, prev = (head["seq"] + 1, head["hash"]) if head else (1, GENESIS)
        else:
            try:
                seq = int(json.loads(last)["seq"]) + 1
            except (ValueError, KeyError, TypeError):  # a broken last line: verify reports it; carry on
                seq = head["seq"] + 1 if head else 1
            prev = sha256(last)
        chained = {"seq": seq, "prev": prev} | dict(record)
        body = _encode(chained)
        line = (b"" if complete else b"\n") + body + b"\n"  # end a line cut short first
        written = os.write(fd, line)
        if written != len(line):
            raise AuditError(f"short write to {path}: {written} of {len(line)} bytes")
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    _write_head(path, seq, sha256(body))
    return chained


def append(record: Mapping, path: str | os.PathLike | None = None, fsync: bool | None = None) -> dict:
    """Append one record as one chained line; creates the file (mode 600) and its folder (700).

    Returns the record as written, with its `seq` and `prev`."""
    path = Path(path) if path else log_path()
    if any(k in record for k in CHAIN):
        raise ValueError("seq and prev are set by the log itself")
    if fsync is None:
        fsync = os.environ.get(FSYNC_ENV, "") not in ("", "0", "false")
    try:
        deploy.private_dir(path.parent)
        with _locked(path):
            return _append_locked(path, record, fsync)
    except OSError as exc:
        raise AuditError(f"cannot write the audit log {path}: {exc}") from exc


def write(kind: str, user: str, path: str | os.PathLike | None = None, **details) -> dict:
    """Build and append one event (see `event` for the fields); returns the record written."""
    return append(event(kind, user, **details), path)


def read(path: str | os.PathLike | None = None) -> list[dict]:
    """Every event in the log, oldest first (for tests and reviews)."""
    path = Path(path) if path else log_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


# --- what the app logs --------------------------------------------------------------------------------------


def _sites(scope) -> str | list:
    return "*" if scope is None else list(scope)


def adhoc_started(user: str, sql: str, path: str | os.PathLike | None = None, **fields) -> str:
    """Log an ad-hoc statement before it runs: its full text (never cut) and SHA-256. Returns the run id that
    its outcome event repeats."""
    run = uuid.uuid4().hex[:16]
    write(
        "adhoc_sql", user, path, outcome="started", run=run, sql=sql, sql_sha256=sha256(sql), chars=len(sql), **fields
    )
    return run


def adhoc_finished(
    user: str, run: str, sql: str, outcome: str, path: str | os.PathLike | None = None, **fields
) -> dict:
    """Log how an ad-hoc statement ended: ok, refused, error, timeout, killed or memory (rows, seconds...)."""
    return write("adhoc_sql", user, path, outcome=outcome, run=run, sql_sha256=sha256(sql), **fields)


def catalog_run(
    user: str,
    query: str,
    params: Mapping | None,
    scope,
    rows: int | None,
    suppressed: int | None,
    path: str | os.PathLike | None = None,
    **fields,
) -> dict:
    """Log a catalog query a person asked for: who, their site scope, the query, parameters, rows returned and
    cells suppressed."""
    return write(
        "query_run",
        user,
        path,
        query=query,
        params=params,
        rows=rows,
        sites=_sites(scope),
        suppressed=suppressed,
        **fields,
    )


def download(
    user: str,
    file_name: str,
    fmt: str,
    data: bytes | str,
    rows: int | None = None,
    path: str | os.PathLike | None = None,
    **fields,
) -> dict:
    """Log a download with the SHA-256 and size of the exact bytes served (text is served as UTF-8)."""
    body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return write(
        "export", user, path, file=file_name, format=fmt, rows=rows, bytes=len(body), sha256=sha256(body), **fields
    )


def denied(
    user: str, reason: str, requested=None, allowed=None, path: str | os.PathLike | None = None, **fields
) -> dict:
    """Log a refused request, e.g. sites outside the user's scope: what was asked for and what is allowed."""
    return write("denied", user, path, reason=reason, requested=requested, allowed=_sites(allowed), **fields)


# --- verification -------------------------------------------------------------------------------------------


@dataclass
class Verification:
    """The state of a log and its rotated files. When broken, `file`, `line` and `problem` say where first."""

    ok: bool
    path: str
    files: list[str] = field(default_factory=list)
    lines: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    file: str | None = None
    line: int | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.ok:
            if not self.lines:
                return f"audit log {self.path}: empty"
            return (
                f"audit log OK: {self.lines:,} lines in {len(self.files)} file(s), seq {self.first_seq}.."
                f"{self.last_seq}, last hash {self.last_hash}" + "".join(f"; {n}" for n in self.notes)
            )
        return f"audit log BROKEN at {self.file} line {self.line}: {self.problem}"


def rotated(path: str | os.PathLike) -> list[Path]:
    """The rotated files of the log at `path`, oldest first."""
    path = Path(path)
    stem, suffix = path.stem, path.suffix
    out = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = _ROTATED.match(p.name)
            if m and m["stem"] == stem and m["suffix"] == suffix:
                out.append(p)
    return sorted(out, key=lambda p: p.name)


def _lines(path: Path):
    """(line number, bytes without the newline, complete) for each line of a file."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            yield n, raw[:-1] if raw.endswith(b"\n") else raw, raw.endswith(b"\n")


def verify(path: str | os.PathLike | None = None, anchor: tuple[int, str] | None = None) -> Verification:
    """Check the chain of the log at `path` (default log_path()) and its rotated files, oldest first.

    Reports the first line that was edited, removed, moved, inserted or cut short, lines missing from the end
    (against the head file), and with `anchor` (seq, sha256 recorded elsewhere) that the line with that seq
    is still there unchanged.
    """
    path = Path(path) if path else log_path()
    head = _read_head(path)  # read first: writers update it after appending, so it is never ahead of the log
    files = rotated(path) + ([path] if path.exists() else [])
    state = Verification(ok=True, path=str(path), files=[p.name for p in files])

    def broken(file: Path | str, line: int, problem: str) -> Verification:
        state.ok, state.file, state.line, state.problem = False, Path(file).name, line, problem
        return state

    if not files:
        if head:
            return broken(path, 1, f"the log file is missing (its head file records seq {head['seq']})")
        return state
    expected, prev_hash, prev_where = None, None, None
    start, pruned, hashes = None, set(), {}
    for file in files:
        for n, raw, complete in _lines(file):
            if not complete:
                return broken(file, n, "the line is incomplete: the file was cut short (truncated)")
            try:
                rec = json.loads(raw)
            except ValueError:
                return broken(file, n, "the line is not a JSON record: it was edited or damaged")
            if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int) or not isinstance(rec.get("prev"), str):
                return broken(file, n, "the line has no seq and prev: it is not part of the chain (edited or inserted)")
            seq = rec["seq"]
            if expected is None:
                start = (file, n, seq, rec["prev"])
            elif seq != expected:
                if seq > expected:
                    gone = f"seq {expected}" if seq == expected + 1 else f"seq {expected} to {seq - 1}"
                    return broken(
                        file,
                        n,
                        f"expected seq {expected}, found {seq}: {gone} missing (deleted), or lines were reordered",
                    )
                return broken(
                    file, n, f"expected seq {expected}, found {seq}: a line was repeated, moved or inserted here"
                )
            elif rec["prev"] != prev_hash:
                where_file, where_line = prev_where
                return broken(
                    where_file,
                    where_line,
                    f"the line was changed after it was written (seq {seq - 1}: the next line holds a "
                    "different hash for it), or a line was inserted or removed after it",
                )
            if rec.get("event") == "log_pruned" and isinstance(rec.get("last_hash"), str):
                pruned.add((rec.get("last_seq"), rec["last_hash"]))
            digest = sha256(raw)
            if anchor and seq == anchor[0]:
                hashes[seq] = digest
            expected, prev_hash, prev_where = seq + 1, digest, (file, n)
            state.lines += 1
            state.last_seq, state.last_hash = seq, digest
            if state.first_seq is None:
                state.first_seq = seq
    if start is not None:
        file, n, seq, prev = start
        if (seq, prev) != (1, GENESIS):
            if (seq - 1, prev) in pruned:
                state.notes.append(f"seq 1..{seq - 1} removed by retention (recorded in the log)")
            else:
                return broken(
                    file,
                    n,
                    f"the log starts at seq {seq} after a line that is not here: earlier "
                    "lines were removed without a retention record",
                )
    if not state.lines and head:
        return broken(
            files[-1], 1, f"the log is empty but its head file records seq {head['seq']}: every line was removed"
        )
    if state.lines:
        last_file = files[-1]
        last_line = prev_where[1]
        if head is None:
            return broken(
                last_file, last_line + 1, "the head file is missing: lines cut from the end could not be noticed"
            )
        if head["seq"] > state.last_seq:
            return broken(
                last_file,
                last_line + 1,
                f"lines after seq {state.last_seq} are missing: the head "
                f"records seq {head['seq']} (the end was cut off)",
            )
        if head["seq"] == state.last_seq and head["hash"] != state.last_hash:
            return broken(
                last_file,
                last_line,
                "the last line was changed after it was written (the head holds a different hash for it)",
            )
    if anchor:
        seq, digest = anchor
        if hashes.get(seq) != digest:
            found = "is missing" if seq not in hashes else "has a different hash"
            return broken(path, 0, f"the anchor seq {seq} recorded elsewhere {found}: the log was rewritten")
    return state


# --- rotation and retention ---------------------------------------------------------------------------------


def rotate(path: str | os.PathLike | None = None, now: dt.datetime | None = None) -> Path | None:
    """Move the current log aside as audit.STAMP.jsonl and start a new file whose first line continues the
    chain. Returns the rotated file, or None when there was nothing to rotate."""
    path = Path(path) if path else log_path()
    now = now or dt.datetime.now(dt.UTC)
    try:
        with _locked(path):
            if not path.exists() or path.stat().st_size == 0:
                return None
            target = path.with_name(f"{path.stem}.{now:%Y%m%dT%H%M%S%f}Z{path.suffix}")
            os.rename(path, target)
            fd = os.open(target, os.O_RDONLY)
            try:
                last, _ = _tail(fd)
            finally:
                os.close(fd)
            # the new file starts from the old file's last line, not from the head file
            seq = _seq_of(last)
            _write_head(path, seq, sha256(last))
            _append_locked(path, event("log_rotated", "system", now=now, previous_file=target.name), False)
            return target
    except OSError as exc:
        raise AuditError(f"cannot rotate the audit log {path}: {exc}") from exc


def _seq_of(line: bytes | None) -> int:
    try:
        return int(json.loads(line)["seq"])
    except (TypeError, ValueError, KeyError):
        return 0


def _newest_time(file: Path) -> dt.datetime | None:
    newest = None
    for _, raw, _ in _lines(file):
        try:
            t = dt.datetime.fromisoformat(json.loads(raw)["time"])
        except (ValueError, KeyError, TypeError):
            return None  # a line without a readable time: never old enough to delete
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
        newest = t if newest is None or t > newest else newest
    return newest


def prune(path: str | os.PathLike | None = None, years: int | None = None, now: dt.datetime | None = None) -> list[str]:
    """Delete rotated files, oldest first, while every line in them is older than `years` (default
    retention_years()); the current file and any file with a younger line are kept. Each deletion is
    logged with the file's last seq and hash, which anchors the chain of what is left."""
    path = Path(path) if path else log_path()
    years = retention_years() if years is None else years
    if years < 1:
        raise ValueError("retention must be at least 1 year")
    now = now or dt.datetime.now(dt.UTC)
    try:
        cutoff = now.replace(year=now.year - years)
    except ValueError:  # 29 February
        cutoff = now.replace(year=now.year - years, day=28)
    removed = []
    try:
        with _locked(path):
            for file in rotated(path):
                newest = _newest_time(file)
                if newest is None or newest >= cutoff:
                    break  # keep it and everything after it
                fd = os.open(file, os.O_RDONLY)
                try:
                    last, _ = _tail(fd)
                finally:
                    os.close(fd)
                lines = sum(1 for _ in _lines(file))
                _append_locked(
                    path,
                    event(
                        "log_pruned",
                        "system",
                        now=now,
                        file=file.name,
                        lines=lines,
                        last_seq=_seq_of(last),
                        last_hash=sha256(last or b""),
                        newest=newest.isoformat(),
                        retention_years=years,
                    ),
                    False,
                )
                file.unlink()
                removed.append(file.name)
    except OSError as exc:
        raise AuditError(f"cannot prune the audit log {path}: {exc}") from exc
    return removed


def sibling(name: str, path: str | os.PathLike | None = None) -> Path:
    """A file next to the audit log (e.g. the record of refused loads)."""
    return (Path(path) if path else log_path()).with_name(name)
