"""Rotating the audit log (a new file carries on the chain) and retention (default 6 years; only rotated files
whose every line is older are removed, each removal recorded in the log so the chain stays verifiable)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from outcomes.privacy.audit import (
    AuditError,
    append_locked,
    event,
    locked,
    log_path,
    retention_years,
    sha256,
    tail,
    write_head,
)
from outcomes.privacy.audit_verify import file_lines, rotated


def rotate(path: str | os.PathLike | None = None, now: dt.datetime | None = None) -> Path | None:
    """Move the current log aside as audit.STAMP.jsonl and start a new file whose first line continues the
    chain. Returns the rotated file, or None when there was nothing to rotate."""
    path = Path(path) if path else log_path()
    now = now or dt.datetime.now(dt.UTC)
    try:
        with locked(path):
            if not path.exists() or path.stat().st_size == 0:
                return None
            target = path.with_name(f"{path.stem}.{now:%Y%m%dT%H%M%S%f}Z{path.suffix}")
            os.rename(path, target)
            fd = os.open(target, os.O_RDONLY)
            try:
                last, _ = tail(fd)
            finally:
                os.close(fd)
            # the new file starts from the old file's last line, not from the head file
            seq = _seq_of(last)
            write_head(path, seq, sha256(last))
            append_locked(path, event("log_rotated", "system", now=now, previous_file=target.name), False)
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
    for _, raw, _ in file_lines(file):
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
        with locked(path):
            for file in rotated(path):
                newest = _newest_time(file)
                if newest is None or newest >= cutoff:
                    break  # keep it and everything after it
                fd = os.open(file, os.O_RDONLY)
                try:
                    last, _ = tail(fd)
                finally:
                    os.close(fd)
                lines = sum(1 for _ in file_lines(file))
                append_locked(
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
