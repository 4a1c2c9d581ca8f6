"""The audit log: one JSON object per line, hash-chained, appended, never rewritten. No Streamlit here.

Each event records who, when, where and what was asked (query name, parameters, row counts), never result
rows. Each line starts with its sequence number and the SHA-256 of the line before it (`"seq"`, `"prev"`; the
first line's `prev` is 64 zeros), so a line that is edited, removed, moved or inserted breaks the chain, and
`verify` names the first broken line. A small head file beside the log (`audit.jsonl.head`) holds the last
sequence number and hash, so lines cut from the end are noticed too.

Writers (server threads, other processes, the CLI) take an exclusive `flock` on `audit.jsonl.lock` around
read-last-line + append + head update, so the chain stays whole under concurrent writers; each line is one
write() to a file opened with O_APPEND. Files and folders are created readable by the server's user only.

Checking the chain is in outcomes.privacy.audit_verify; rotation and retention in outcomes.privacy.audit_retention.
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
ROTATED = re.compile(r"^(?P<stem>.+)\.(?P<stamp>\d{8}T\d{12}Z)(?P<suffix>\.[^.]*)$")


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
def locked(path: Path, shared: bool = False):
    fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def tail(fd: int) -> tuple[bytes | None, bool]:
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


def read_head(path: Path) -> dict | None:
    try:
        data = json.loads(head_path(path).read_bytes())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and isinstance(data.get("seq"), int) and isinstance(data.get("hash"), str):
        return data
    return None


def write_head(path: Path, seq: int, digest: str) -> None:
    data = json.dumps({"seq": seq, "hash": digest, "file": path.name}).encode()
    fd = os.open(head_path(path), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _encode(record: Mapping) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def append_locked(path: Path, record: Mapping, fsync: bool) -> dict:
    """Append one chained line; the caller holds the lock. Returns the record with its seq and prev."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        last, complete = tail(fd)
        head = read_head(path)
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
    write_head(path, seq, sha256(body))
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
        with locked(path):
            return append_locked(path, record, fsync)
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


def sibling(name: str, path: str | os.PathLike | None = None) -> Path:
    """A file next to the audit log (e.g. the record of refused loads)."""
    return (Path(path) if path else log_path()).with_name(name)
