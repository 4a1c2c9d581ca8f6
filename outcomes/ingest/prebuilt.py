"""Load-time tables built by another engine (`python -m outcomes build --engine spark`): the statements of
queries/_build, the manifest a build writes beside its tables, and publishing those tables into DuckDB.

A build folder holds one folder of Parquet files per table of queries/_build and `_manifest.json`, written
last: the queries/_build checksum it was built with, each base table's checksum and row count as read, and each
table's row count. A load publishes the folder only when all of these match what it validated.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from outcomes.ingest.build import build_hash
from outcomes.ingest.problems import LoadError, Problem
from outcomes.paths import BUILD_DIR

MANIFEST = "_manifest.json"
FORMAT = 1

_COMMENTS = re.compile(r"\A(?:\s*--[^\n]*\n)*\s*")
_TABLE = re.compile(r"create\s+table\s+([a-z_][a-z0-9_]*)\s+as\s+(.*?);?\s*\Z", re.I | re.S)
_DEFINITION = re.compile(r"create\s+(?:or\s+replace\s+)?(macro|type)\s+([a-z_][a-z0-9_]*)", re.I)


@dataclass(frozen=True)
class Statement:
    """One statement of queries/_build: a table and the query that makes it, or a DuckDB-only definition
    (a macro or a type), which holds no data and is run as written wherever the tables are published."""

    sql: str
    file: str
    table: str | None = None
    query: str | None = None
    definition: str | None = None  # "macro" or "type"
    name: str | None = None  # of the macro or type


class BuildError(Exception):
    """queries/_build holds a statement that cannot be built elsewhere, or a build folder is not usable."""


def statements(build_dir: Path = BUILD_DIR) -> list[Statement]:
    """Every statement of queries/_build/*.sql, in the order the DuckDB load runs them."""
    out = []
    for path in sorted(build_dir.glob("*.sql")):
        for stmt in duckdb.extract_statements(path.read_text()):
            sql = stmt.query.strip()
            text = _COMMENTS.sub("", sql)
            if m := _TABLE.fullmatch(text):
                out.append(Statement(sql, path.name, table=m.group(1).lower(), query=m.group(2)))
            elif m := _DEFINITION.match(text):
                out.append(Statement(sql, path.name, definition=m.group(1).lower(), name=m.group(2).lower()))
            else:
                raise BuildError(
                    f"{path.name}: only `create table NAME as SELECT`, `create macro` and `create type` "
                    f"can be built on another engine: {text[:60]!r}"
                )
    return out


@dataclass(frozen=True)
class Manifest:
    folder: Path
    sha256: str  # of the manifest file: names this build in the load record
    build_hash: str
    engine: str
    sources: dict[str, str | None]  # base table -> checksum of what was read (None: not a local path)
    rows: dict[str, int]  # base and built tables -> rows


def manifest_text(build_hash: str, engine: str, sources: dict, rows: dict, extra: dict | None = None) -> str:
    return (
        json.dumps(
            {
                "format": FORMAT,
                "build_hash": build_hash,
                "engine": engine,
                "sources": sources,
                "rows": rows,
                **(extra or {}),
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )


def _problem(folder: Path, message: str):
    return Problem(folder.name + "/", None, None, "prebuilt", message)


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a build folder; raises LoadError when it is missing or unreadable."""
    path = folder / MANIFEST
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        return Manifest(
            folder,
            hashlib.sha256(raw).hexdigest(),
            data["build_hash"],
            data["engine"],
            dict(data["sources"]),
            {k: int(v) for k, v in data["rows"].items()},
        )
    except FileNotFoundError:
        message = f"no {MANIFEST}: not a finished build (run `python -m outcomes build` into it)"
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        message = f"{MANIFEST} is not a build manifest ({exc})"
    raise LoadError([_problem(folder, message)])


def check(manifest: Manifest, sums: dict[str, str], rows: dict[str, int]) -> list:
    """Problems that make the build unfit for these extracts: other queries/_build, other data."""
    problems = []
    if manifest.build_hash != build_hash():
        problems.append(_problem(manifest.folder, "built with different queries/_build; build again"))
    for name, count in rows.items():
        built = manifest.sources.get(name)
        if built is not None and sums.get(name) is not None and built != sums[name]:
            problems.append(_problem(manifest.folder, f"built from a different {name} (checksum differs); build again"))
        elif manifest.rows.get(name) != count:
            problems.append(
                _problem(
                    manifest.folder,
                    f"built from {manifest.rows.get(name)} {name} rows, these extracts have {count}; build again",
                )
            )
    return problems


def _sql_str(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def publish(con, manifest: Manifest) -> None:
    """Create every load-time table from the build folder, typed exactly as the DuckDB build would type it, in
    the order of the Parquet files (a build writes them in the table's order); run the definitions as written."""
    for stmt in statements():
        if stmt.definition:
            con.execute(stmt.sql)
            continue
        columns = [(r[0], r[1]) for r in con.execute(f"describe {stmt.query}").fetchall()]
        files = sorted((manifest.folder / stmt.table).glob("*.parquet"))
        defs = ", ".join(f'"{c}" {t}' for c, t in columns)
        con.execute(f"create table {stmt.table} ({defs})")
        if files:
            scan = f"read_parquet([{', '.join(_sql_str(f) for f in files)}])"
            found = [r[0] for r in con.execute(f"describe select * from {scan}").fetchall()]
            if sorted(found) != sorted(c for c, _ in columns):
                raise LoadError(
                    [
                        _problem(
                            manifest.folder,
                            f"{stmt.table} has columns {', '.join(found)}; "
                            f"queries/_build makes {', '.join(c for c, _ in columns)}",
                        )
                    ]
                )
            cols = ", ".join(f'cast("{c}" as {t})' for c, t in columns)
            con.execute(f"insert into {stmt.table} select {cols} from {scan}")
        count = con.execute(f"select count(*) from {stmt.table}").fetchone()[0]
        if count != manifest.rows.get(stmt.table):
            raise LoadError(
                [
                    _problem(
                        manifest.folder,
                        f"{stmt.table} holds {count} rows; the manifest says {manifest.rows.get(stmt.table)}",
                    )
                ]
            )
