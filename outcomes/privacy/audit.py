"""The audit log: one JSON object per line, appended, never rewritten. No Streamlit here.

Each event records who, when, where and what was asked (query name, parameters, row counts), never result
rows. Every event is a single write() to a file opened with O_APPEND, so concurrent writers (server threads,
processes) never interleave within a line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from outcomes.paths import ROOT

DEFAULT_LOG = ROOT / "data" / "audit.jsonl"
LOG_ENV = "OUTCOMES_AUDIT_LOG"
FSYNC_ENV = "OUTCOMES_AUDIT_FSYNC"
EVENTS = ("page_view", "export", "adhoc_sql", "denied", "data_load", "login", "email_sent")
MAX_TEXT = 20_000  # characters kept of a free-text field such as ad-hoc SQL
MAX_ITEMS = 100  # most values in one list or mapping (sites, payers...); a longer one is refused


class AuditError(Exception):
    """The event could not be written."""


def log_path(configured: str | os.PathLike | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """$OUTCOMES_AUDIT_LOG, else `configured` (the `audit_log` secret), else data/audit.jsonl; relative to the repo."""
    path = Path(env.get(LOG_ENV) or configured or DEFAULT_LOG)
    return path if path.is_absolute() else ROOT / path


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


def event(kind: str, user: str, *, page: str | None = None, query: str | None = None, params: Mapping | None = None,
          rows: int | None = None, now: dt.datetime | None = None, **fields) -> dict:
    """The record for one event: time (UTC), event, user, page, query, params, rows and any scalar `fields`."""
    if kind not in EVENTS:
        raise ValueError(f"unknown audit event {kind!r} (one of {', '.join(EVENTS)})")
    record = {
        "time": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="milliseconds"),
        "event": kind,
        "user": user,
        "page": page,
        "query": query,
        "params": {str(k): _plain(v, f"params.{k}") for k, v in (params or {}).items()},
        "rows": None if rows is None else int(rows),
    }
    for key, value in fields.items():
        if key in record:
            raise ValueError(f"audit field {key!r} is reserved")
        record[key] = _plain(value, key)
    return record


def append(record: Mapping, path: str | os.PathLike | None = None, fsync: bool | None = None) -> None:
    """Append one record as one line with a single write(); creates the file (mode 600) and its folder."""
    path = Path(path) if path else log_path()
    line = (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode("utf-8")
    if fsync is None:
        fsync = os.environ.get(FSYNC_ENV, "") not in ("", "0", "false")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise AuditError(f"short write to {path}: {written} of {len(line)} bytes")
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuditError(f"cannot write the audit log {path}: {exc}") from exc


def write(kind: str, user: str, path: str | os.PathLike | None = None, **details) -> dict:
    """Build and append one event (see `event` for the fields); returns the record written."""
    record = event(kind, user, **details)
    append(record, path)
    return record


def read(path: str | os.PathLike | None = None) -> list[dict]:
    """Every event in the log, oldest first (for tests and reviews)."""
    path = Path(path) if path else log_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
