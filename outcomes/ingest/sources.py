"""The extracts as found: one file or lake folder per contract table, their checksums, headers and lines."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path
from typing import Protocol

from outcomes.ingest import contract
from outcomes.ingest.problems import Problem

MAX_LINE_BYTES = 2_000_000
MAX_COLUMNS = 200  # columns in one file's header; the contract has at most 14 per table


def sql_str(value: str) -> str:
    # Only file paths we found ourselves reach SQL text; everything user-typed is bound.
    return "'" + str(value).replace("'", "''") + "'"


def find_files(source: Path) -> tuple[dict[str, Path], list[Problem]]:
    """Locate one CSV or Parquet file, or one folder of Parquet files (a lake), per contract table."""
    found, problems = {}, []
    for name in contract.TABLES:
        candidates = [source / f"{name}.{ext}" for ext in ("csv", "parquet") if (source / f"{name}.{ext}").exists()]
        if (source / name).is_dir():
            candidates.append(source / name)
        if not candidates:
            problems.append(
                Problem(f"{name}.csv", None, None, "missing-file", f"no {name}.csv or {name}.parquet in {source}")
            )
        elif len(candidates) > 1:
            problems.append(
                Problem(
                    candidates[0].name,
                    None,
                    None,
                    "ambiguous-file",
                    f"{' and '.join(file_label(c) for c in candidates)} both exist; keep one",
                )
            )
        else:
            found[name] = candidates[0]
    return found, problems


def file_label(path: Path) -> str:
    return path.name + "/" if path.is_dir() else path.name


def lake_files(folder: Path) -> list[Path]:
    """The Parquet files of a lake table folder, in name order (hidden and _-prefixed files are not data)."""
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )


def checksum(path: Path) -> str:
    """SHA-256 of a file; of a lake folder, of each Parquet file's path and checksum in name order."""
    h = hashlib.sha256()
    if path.is_dir():
        for part in lake_files(path):
            h.update(part.relative_to(path).as_posix().encode() + b"\0" + checksum(part).encode() + b"\n")
        return h.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def csv_header(path: Path) -> list[str] | None:
    with open(path, "rb") as f:
        head = f.read(MAX_LINE_BYTES)
    if not head.strip():
        return None
    text = head.decode("utf-8-sig", errors="replace")
    return [c.strip() for c in next(csv.reader(io.StringIO(text)))]


def parquet_header(con, path: Path) -> list[str]:
    rows = con.execute(f"select name from parquet_schema({sql_str(path)}) where num_children is null").fetchall()
    return [r[0] for r in rows]


def check_columns(
    table: contract.Table, file: str, header: list[str], line: int | None = 1
) -> tuple[list[Problem], list[str]]:
    problems, ignored = [], []
    known = {c.name for c in table.columns}
    seen = set()
    for col in header:
        if col in seen:
            problems.append(Problem(file, line, col, "duplicate-column", "column appears twice in the header"))
        seen.add(col)
        if col in known:
            continue
        kind = contract.identifier_kind(col)
        if kind:
            problems.append(
                Problem(
                    file,
                    line,
                    col,
                    "privacy",
                    f"looks like {kind}; direct identifiers must not be loaded (remove the column)",
                )
            )
        else:
            ignored.append(col)
    for col in table.required:
        if col not in header:
            problems.append(Problem(file, line, col, "missing-column", "required column is missing"))
    return problems, ignored


REJECT_MESSAGES = {
    "CAST": "value is not a valid {type}",
    "TOO MANY COLUMNS": "more fields than the header",
    "MISSING COLUMNS": "fewer fields than the header",
    "UNQUOTED VALUE": "badly quoted value",
    "INVALID ENCODING": "not valid UTF-8 text",
    "INVALID UNICODE": "not valid UTF-8 text",
    "LINE SIZE OVER MAXIMUM": f"line longer than {MAX_LINE_BYTES // 1_000_000} MB",
}


class TableSource(Protocol):
    """Tables that are not files in a folder (a database, say): each is read once, as Arrow."""

    label: str  # what the load record keeps as its source: holds no secret

    def find(self) -> tuple[dict[str, str], list[Problem]]:
        """A label for each contract table present (e.g. "warehouse.clients"), and a problem for each missing."""

    def columns(self, name: str) -> list[str]:
        """The table's column names."""

    def read(self, name: str, columns: list[str]):
        """These columns of the table as a pyarrow RecordBatchReader or Table."""


def line_map(path: Path, rejected: list[int]) -> dict[int, int]:
    """Map record numbers of accepted rows to file lines, allowing for quoted newlines and rejected lines."""
    cache = line_map.__dict__.setdefault("cache", {})
    key = (str(path), tuple(rejected))
    if key in cache:
        return cache[key]
    mapping: dict[int, int] = {}
    skip = set(rejected)
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        next(reader, None)
        start, row = reader.line_num + 1, 0
        for _ in reader:
            if start not in skip:
                row += 1
                mapping[row] = start
            start = reader.line_num + 1
    cache.clear()
    cache[key] = mapping
    return mapping
