"""Extract files uploaded through the Data page: name and size checks, a private folder for the loader, the
load itself in a child process with a memory cap, and a lasting record of refused loads.

`load` runs outcomes.loader.load in a child process (outcomes.catalog.child) whose address space is capped, so a
malformed or hostile upload cannot use up the server's memory or crash it: whatever happens in the child
ends as a LoadError naming the file, and the server carries on. Each refused load is recorded in
refused-loads.jsonl beside the audit log (mode 600): the files' SHA-256s and sizes, the rules broken and how
often; never a value from the files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import BinaryIO

from outcomes.ingest import contract
from outcomes.ingest.problems import LoadError, LoadResult, Problem
from outcomes.privacy import deploy

SUFFIXES = (".csv", ".parquet")
DEFAULT_LIMIT_MB = 200  # server.maxUploadSize in .streamlit/config.toml


def table_file(name: str) -> str | None:
    """The contract file name an upload stands for (`clients.csv`, ...), or None when it is not one."""
    path = Path(Path(name).name.lower())
    if path.stem in contract.TABLES and path.suffix in SUFFIXES:
        return path.name
    return None


def check(files: list[tuple[str, int]], limit_mb: int = DEFAULT_LIMIT_MB) -> list[Problem]:
    """Problems with uploads given as (name, size in bytes): unknown names, repeats, files over the limit."""
    problems, seen = [], set()
    expected = ", ".join(f"{t}.csv" for t in contract.TABLES)
    for name, size in files:
        target = table_file(name)
        if target is None:
            problems.append(
                Problem(name, None, None, "unknown-file", f"not one of the four extracts ({expected}, or .parquet)")
            )
        elif target in seen:
            problems.append(Problem(name, None, None, "duplicate-file", f"{target} was uploaded twice"))
        seen.add(target)
        if size > limit_mb * 1024 * 1024:
            problems.append(
                Problem(
                    name,
                    None,
                    None,
                    "too-large",
                    f"{size / 1024 / 1024:,.0f} MB is over the upload limit of {limit_mb} MB "
                    "(server.maxUploadSize); load larger files with `python -m outcomes load`",
                )
            )
    return problems


def save(files: list[tuple[str, BinaryIO]], folder: Path) -> None:
    """Write uploads (name, readable file) into `folder` (made 0700) under their contract names (files 0600)."""
    folder = deploy.private_dir(folder)
    for name, data in files:
        target = table_file(name)
        if target is None:
            raise ValueError(f"{name} is not an extract file name")
        data.seek(0)
        fd = os.open(folder / target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, deploy.PRIVATE_FILE)
        with os.fdopen(fd, "wb") as out:
            while block := data.read(1 << 20):
                out.write(block)


# --- the load in a child process --------------------------------------------------------------------------

ADDRESS_SPACE = 4 << 30  # the child's cap: DuckDB's 2 GB load limit (loader.LOAD_CONFIG), Python and headroom
TIME_LIMIT = 1800.0  # seconds a load of uploads may take before its child is stopped
ENV = {"address_space": "OUTCOMES_UPLOAD_ADDRESS_SPACE", "time_limit": "OUTCOMES_UPLOAD_TIME_LIMIT"}
REFUSED_LOG = "refused-loads.jsonl"


def load(
    folder: str | os.PathLike,
    db_path: str | os.PathLike,
    as_of: dt.date | None = None,
    progress=None,
    address_space: int | None = None,
    time_limit: float | None = None,
    user: str | None = None,
    record: str | os.PathLike | None = None,
) -> LoadResult:
    """loader.load of `folder` into `db_path`, run in a child process with a capped address space.

    Raises LoadError for a refusal, including a child that ran out of memory, crashed or ran past
    `time_limit` (the problem names the file it was reading). Every refusal is appended to the record of
    refused loads (`record`, default refused-loads.jsonl beside the audit log) with `user`.
    """
    from outcomes.catalog.child import Child, ChildDied, ChildTimeout, ProtocolError

    folder = Path(folder)
    address_space = address_space or int(os.environ.get(ENV["address_space"]) or ADDRESS_SPACE)
    time_limit = time_limit or float(os.environ.get(ENV["time_limit"]) or TIME_LIMIT)
    report = progress or (lambda fraction, message: None)
    current = "the uploads"
    deadline = time.monotonic() + time_limit
    child = None
    try:
        try:
            child = Child("outcomes.ingest.uploads:serve_load", address_space, start_timeout=60)
            child.send({"folder": str(folder), "db": str(db_path), "as_of": as_of.isoformat() if as_of else None})
            while True:
                msg, _ = child.receive(deadline)
                if "progress" in msg:
                    current = _file_in(str(msg.get("message", ""))) or current
                    report(float(msg["progress"]), str(msg.get("message", ""))[:200])
                    continue
                break
        except ChildTimeout:
            raise _stopped(current, f"ran past the time limit of {time_limit:g} s") from None
        except ChildDied as exc:
            why = (
                f"used more than the memory limit of {address_space / 2**30:g} GB"
                if exc.signal in (6, 7, 9) or "memory" in exc.detail.lower()
                else f"stopped: its process {exc}"
            )
            raise _stopped(current, why) from None
        except ProtocolError as exc:
            raise _stopped(current, f"stopped: {exc}") from None
        if msg.get("refused") is not None:
            raise LoadError([Problem(**p) for p in msg["refused"]])
        if msg.get("memory"):
            raise _stopped(current, f"used more than the memory limit of {address_space / 2**30:g} GB")
        if msg.get("error"):
            raise _stopped(current, f"failed ({msg['error']})")
        r = msg["result"]
        return LoadResult(
            Path(r["db_path"]),
            r["changed"],
            dt.date.fromisoformat(r["data_through"]),
            r["rows"],
            r["seconds"],
            r["ignored_columns"],
        )
    except LoadError as exc:
        try:
            record_refusal(folder, exc.problems, user=user, path=record)
        except OSError as err:  # the refusal itself still reaches the caller
            logging.getLogger(__name__).error("cannot record a refused load: %s", err)
        raise
    finally:
        if child is not None:
            child.kill()


def _file_in(message: str) -> str | None:
    # progress says "reading clients.csv"
    for word in message.split():
        if table_file(word):
            return word
    return None


def _stopped(file: str, why: str) -> LoadError:
    return LoadError(
        [
            Problem(
                file,
                None,
                None,
                "validation-stopped",
                f"validating {file} {why}; nothing was published and the server carries on",
            )
        ]
    )


def serve_load(channel) -> None:
    """Child side: one load, progress as it goes, then the result or the problems."""
    from outcomes.ingest import loader

    channel.send({"ready": True, "pid": os.getpid()})
    request, _ = channel.receive()
    as_of = dt.date.fromisoformat(request["as_of"]) if request.get("as_of") else None
    try:
        result = loader.load(
            request["folder"], request["db"], as_of, progress=lambda f, m: channel.send({"progress": f, "message": m})
        )
    except LoadError as exc:
        channel.send({"refused": [vars(p) for p in exc.problems]})
    except MemoryError:
        channel.send({"memory": True})
    except Exception as exc:  # the kind only: a message could quote a value from the files
        memory = "memory" in str(exc).lower()
        channel.send({"memory": True} if memory else {"error": type(exc).__name__})
    else:
        channel.send(
            {
                "result": {
                    "db_path": str(result.db_path),
                    "changed": result.changed,
                    "data_through": result.data_through.isoformat(),
                    "rows": result.rows,
                    "seconds": result.seconds,
                    "ignored_columns": result.ignored_columns,
                }
            }
        )


# --- the record of refused loads --------------------------------------------------------------------------


def record_path(path: str | os.PathLike | None = None) -> Path:
    """refused-loads.jsonl beside the audit log, unless `path` is given."""
    from outcomes.privacy import audit

    return Path(path) if path else audit.sibling(REFUSED_LOG)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_refusal(
    folder: str | os.PathLike | None,
    problems: list[Problem],
    user: str | None = None,
    path: str | os.PathLike | None = None,
    now: dt.datetime | None = None,
    source: str | None = None,
) -> dict:
    """Append one refused load: each file's name, size and SHA-256, and the rules broken with their counts
    (overall and by file). No value from the files, and no problem message (DuckDB's can quote one). A load
    from a database has no files: `source` names it (a URL without password)."""
    folder = Path(folder) if folder is not None else None
    files = (
        [
            {"name": p.name, "bytes": p.stat().st_size, "sha256": _digest(p)}
            for p in sorted(folder.iterdir())
            if p.is_file() and table_file(p.name)
        ]
        if folder is not None and folder.is_dir()
        else []
    )
    by_file: dict[str, Counter] = {}
    for p in problems:
        by_file.setdefault(p.file, Counter())[p.rule] += 1
    entry = {
        "time": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "user": user,
        **({"source": source} if source else {}),
        "files": files,
        "problems": len(problems),
        "rules": dict(sum(by_file.values(), Counter())),
        "by_file": {f: dict(c) for f, c in sorted(by_file.items())},
    }
    target = record_path(path)
    deploy.private_dir(target.parent)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, deploy.PRIVATE_FILE)
    try:
        os.write(fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
    finally:
        os.close(fd)
    return entry


def refused_loads(path: str | os.PathLike | None = None, limit: int = 100) -> list[dict]:
    """The most recent refused loads, newest first (for the Data page)."""
    target = record_path(path)
    if not target.exists():
        return []
    out = []
    for line in target.read_bytes().split(b"\n"):
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out[::-1][:limit]
