"""Validate a folder of extracts and build the DuckDB database, all or nothing."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb

from outcomes.ingest import contract
from outcomes.paths import BUILD_DIR
from outcomes.privacy import deploy

MAX_SHOWN = 50  # problems listed in full; the rest are counted by rule
# The value itself is never repeated: it may be the identifier.
IDENTIFIER_MESSAGE = (
    "value looks like an identifier (an SSN, phone or record number, a date, an e-mail or street "
    "address); free-text fields must not hold identifiers (the value is not shown)"
)
MAX_LINE_BYTES = 2_000_000
MAX_COLUMNS = 200  # columns in one file's header; the contract has at most 14 per table
# DuckDB settings for a load: a memory cap (it spills to disk beyond it) and row order kept as read, so that a
# staged row's rowid is its record number in the file.
LOAD_CONFIG = {"memory_limit": "2GB", "preserve_insertion_order": True}
# Physical order of the published tables; None keeps the file's order. Catalog queries read the base tables
# through tables built from them at load time (queries/_build), which are sorted by the dates queries filter
# on; sorting the 100M sessions as well would cost a minute of load and speed up no catalog query.
PUBLISH_ORDER = {"clients": None, "enrollments": None, "attendance": None, "transitions": None}


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: str | None
    rule: str
    message: str
    key: str | None = None  # the row's key, e.g. "episode_id E000123", where the source has no file lines

    def __str__(self) -> str:
        where = self.file
        if self.key is not None:
            where += f", {self.key}"
        elif self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message} [{self.rule}]"


class LoadError(Exception):
    """The extracts broke the contract; nothing was changed."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(self.report())

    def report(self, limit: int = MAX_SHOWN) -> str:
        counts: dict[str, int] = {}
        for p in self.problems:
            counts[f"{p.file} {p.rule}"] = counts.get(f"{p.file} {p.rule}", 0) + 1
        lines = [f"load refused: {len(self.problems)} problem(s); the database was not changed"]
        lines += [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... {len(self.problems) - limit} more; counts by file and rule:")
            lines += [f"    {k}: {v}" for k, v in sorted(counts.items())]
        return "\n".join(lines)


@dataclass
class LoadResult:
    db_path: Path
    changed: bool
    data_through: dt.date
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)


def _sql_str(value: str) -> str:
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
                    f"{' and '.join(_label(c) for c in candidates)} both exist; keep one",
                )
            )
        else:
            found[name] = candidates[0]
    return found, problems


def _label(path: Path) -> str:
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


def _csv_header(path: Path) -> list[str] | None:
    with open(path, "rb") as f:
        head = f.read(MAX_LINE_BYTES)
    if not head.strip():
        return None
    text = head.decode("utf-8-sig", errors="replace")
    return [c.strip() for c in next(csv.reader(io.StringIO(text)))]


def _parquet_header(con, path: Path) -> list[str]:
    rows = con.execute(f"select name from parquet_schema({_sql_str(path)}) where num_children is null").fetchall()
    return [r[0] for r in rows]


def _check_columns(
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


_REJECT_MESSAGES = {
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


class _Build:
    """One load in progress: a private database file and the problems found so far.

    Each file is staged as table _s_NAME holding its accepted rows in file order, typed as the contract says;
    the view _v_NAME adds _row, the record number (rowid + 1). Rules read the views; publishing renames a
    staged table that already has the contract's columns in order, and copies the others. A table of a lake
    folder or of a TableSource has no lines to point at, so its problems name the row's key instead.
    """

    def __init__(self, con, files: dict[str, Path | str], source: TableSource | None = None):
        self.con = con
        self.files = files  # a path, or the label of a table of `source`
        self.source = source
        self.problems: list[Problem] = []
        self.present: dict[str, list[str]] = {}
        self.ignored: dict[str, list[str]] = {}
        self.rejected_lines: dict[str, list[int]] = {}

    def check_rows(self) -> None:
        """A table with a header and no data rows is refused (unless its rows were rejected: already reported)."""
        reported = {p.file for p in self.problems}
        for name in self.present:
            file = self.label(name)
            if file not in reported and self.con.execute(f"select count(*) from _s_{name}").fetchone()[0] == 0:
                self.problems.append(Problem(file, None, None, "no-rows", "the table has a header but no data rows"))

    def _view(self, name: str) -> None:
        self.con.execute(f"create or replace view _v_{name} as select rowid + 1 as _row, * from _s_{name}")

    def _create_stage(self, table, columns: list[tuple[str, str]]) -> None:
        """Create the empty staging table with these (name, type) columns, and its view. The key is stored
        uncompressed: compressing 100M distinct ids costs more load time than the space it saves."""
        defs = ", ".join(
            f'"{c}" {t}' + (" using compression uncompressed" if c == table.key else "") for c, t in columns
        )
        self.con.execute(f"create table _s_{table.name} ({defs})")
        self._view(table.name)

    def label(self, name: str) -> str:
        where = self.files[name]
        return _label(where) if isinstance(where, Path) else where

    def keyed(self, name: str) -> bool:
        """Whether problems in `name` name the row's key rather than a line or row of one file."""
        where = self.files[name]
        return not (isinstance(where, Path) and where.is_file())

    def stage(self, name: str) -> None:
        table, path, label = contract.TABLES[name], self.files[name], self.label(name)
        if not isinstance(path, Path):
            return self._stage_arrow(table)
        if path.is_dir():
            return self._stage_lake(table, path)
        try:
            header = _parquet_header(self.con, path) if path.suffix == ".parquet" else _csv_header(path)
        except duckdb.Error:
            self.problems.append(
                Problem(label, None, None, "unreadable", "not a readable Parquet file (truncated or corrupt?)")
            )
            return
        except csv.Error:
            self.problems.append(
                Problem(
                    path.name,
                    1,
                    None,
                    "bad-header",
                    "the header row is not valid CSV (a line break or quote inside an unquoted column name?)",
                )
            )
            return
        if not header:
            self.problems.append(Problem(label, None, None, "empty-file", "file is empty (no header row)"))
            return
        if len(header) > MAX_COLUMNS:
            self.problems.append(
                Problem(
                    label,
                    1,
                    None,
                    "too-many-header-columns",
                    f"{len(header):,} columns in the header; at most {MAX_COLUMNS} are read",
                )
            )
            return
        if any("\x00" in col or "\r" in col or "\n" in col for col in header):
            self.problems.append(
                Problem(label, 1, None, "bad-header", "a column name holds a NUL or line-break character")
            )
            return
        present = self._columns(table, header)
        if present is None:
            return
        if path.suffix == ".parquet":
            self._stage_parquet(
                table, f"read_parquet({_sql_str(path)})", present, "not a readable Parquet file (truncated or corrupt?)"
            )
        else:
            self._stage_csv(table, path, header, present)

    def _columns(self, table, header: list[str]) -> list[str] | None:
        """The contract columns present, or None when the header breaks a rule."""
        problems, ignored = _check_columns(table, self.label(table.name), header, None if self.keyed(table.name) else 1)
        self.problems += problems
        self.ignored[table.name] = ignored
        if problems:
            return None
        self.present[table.name] = [c.name for c in table.columns if c.name in header]
        return self.present[table.name]

    def _stage_lake(self, table, folder: Path) -> None:
        """A folder of Parquet files, partitioned hive-style (site=X/month=Y/...): the partition values come from
        the paths, as text."""
        files = lake_files(folder)
        if not files:
            self.problems.append(
                Problem(self.label(table.name), None, None, "empty-file", "no Parquet files in the folder")
            )
            return
        keys = sorted(
            {part.split("=", 1)[0] for f in files for part in f.relative_to(folder).parts[:-1] if "=" in part}
        )
        types = "{" + ", ".join(f"{_sql_str(k)}: 'VARCHAR'" for k in keys) + "}"
        scan = f"read_parquet([{', '.join(_sql_str(f) for f in files)}], union_by_name=true" + (
            f", hive_partitioning=true, hive_types={types})" if keys else ", hive_partitioning=false)"
        )
        unreadable = "not readable as Parquet files (truncated or corrupt?)"
        try:
            header = [r[0] for r in self.con.execute(f"describe select * from {scan}").fetchall()]
        except duckdb.Error:
            self.problems.append(Problem(self.label(table.name), None, None, "unreadable", unreadable))
            return
        present = self._columns(table, header)
        if present is not None:
            self._stage_parquet(table, scan, present, unreadable)

    def _stage_arrow(self, table) -> None:
        """A table of the TableSource, read as Arrow; only the contract's columns are asked for."""
        label = self.label(table.name)
        try:
            present = self._columns(table, self.source.columns(table.name))
            if present is None:
                return
            view = f"_arrow_{table.name}"
            self.con.register(view, self.source.read(table.name, present))
        except Exception as exc:  # a driver's own error class: report it as the table's, not as a crash
            self.problems.append(Problem(label, None, None, "unreadable", f"could not be read: {_first_line(exc)}"))
            return
        try:
            self._stage_parquet(table, view, present, "could not be read")
        finally:
            self.con.unregister(view)

    def _stage_csv(self, table, path, header, present):
        types = {col: (table.column(col).type if col in present else "VARCHAR") for col in header}
        spec = "{" + ", ".join(f"{_sql_str(c)}: {_sql_str(t)}" for c, t in types.items()) + "}"
        select = ", ".join(f'"{c}"' for c in present)
        rt = f"rejects_{table.name}"
        self._create_stage(table, [(c, types[c]) for c in present])
        try:
            self.con.execute(
                f"insert into _s_{table.name} select {select} "
                f"from read_csv({_sql_str(path)}, header=true, auto_detect=false, delim=',', quote='\"', "
                f"escape='\"', dateformat='%Y-%m-%d', columns={spec}, max_line_size={MAX_LINE_BYTES}, "
                f"store_rejects=true, rejects_scan='{rt}_scan', rejects_table='{rt}', rejects_limit=0)"
            )
        except duckdb.Error as exc:
            self.problems.append(
                Problem(
                    path.name, None, None, "unreadable", f"could not be read as CSV: {str(exc).splitlines()[0][:200]}"
                )
            )
            return
        rows = self.con.execute(f"select line, column_name, error_type from {rt} order by line").fetchall()
        self.rejected_lines[table.name] = sorted({r[0] for r in rows})
        for line, column, error in rows:
            typ = table.column(column).type.lower() if column in present else "value"
            kind = {"integer": "whole number", "date": "date (YYYY-MM-DD)", "boolean": "true/false"}.get(typ, typ)
            msg = _REJECT_MESSAGES.get(error, error.lower()).format(type=kind)
            self.problems.append(
                Problem(path.name, int(line), column if column in types else None, error.lower().replace(" ", "-"), msg)
            )

    def _stage_parquet(self, table, scan: str, present: list[str], unreadable: str):
        """Stage from a typed scan (Parquet, a lake, Arrow): a column already of the contract's type is taken as
        it is; any other is converted, and each value that does not convert is reported."""
        label = self.label(table.name)
        try:
            stored = dict(
                self.con.execute(f"select column_name, column_type from (describe select * from {scan})").fetchall()
            )
        except duckdb.Error:
            self.problems.append(Problem(label, None, None, "unreadable", unreadable))
            return
        cols, columns, checked = [], [], []
        for col in present:
            typ = table.column(col).type
            if stored.get(col) == typ:  # already the contract's type: nothing to convert or check
                cols.append(f'"{col}"')
            elif typ == "VARCHAR":
                cols.append(f'cast("{col}" as VARCHAR)')
            else:
                cols.append(f'try_cast("{col}" as {typ}), "{col}"')
                columns.append((col, typ))
                checked.append(col)
                columns.append((f"_raw_{col}", stored[col]))
                continue
            columns.append((col, typ))
        self._create_stage(table, columns)
        try:
            self.con.execute(f"insert into _s_{table.name} select {', '.join(cols)} from {scan}")
        except duckdb.Error as exc:
            detail = f": {_first_line(exc)}" if unreadable == "could not be read" else ""
            self.problems.append(Problem(label, None, None, "unreadable", unreadable + detail))
            return
        for col in checked:
            typ = table.column(col).type
            self._rule(
                table.name,
                col,
                "type",
                f"value is not a valid {typ.lower()}",
                f'"_raw_{col}" is not null and "{col}" is null',
            )
        for col in checked:
            self.con.execute(f'alter table _s_{table.name} drop column "_raw_{col}"')
        if checked:
            self._view(table.name)

    def _rule(
        self, name: str, column: str | None, rule: str, message: str, where: str, params=None, total: int | None = None
    ) -> None:
        """Report the rows of `name` matching `where`: the first MAX_SHOWN, then a count of the rest.
        `total`, when known, is the number of matching rows (0: nothing to report, no scan)."""
        if total == 0:
            return
        rows = self.con.execute(
            f"select _row from _v_{name} where {where} order by _row limit {MAX_SHOWN}", params or {}
        ).fetchall()
        if not rows:
            return
        if total is None:
            total = self.con.execute(f"select count(*) from _v_{name} where {where}", params or {}).fetchone()[0]
        file = self.label(name)
        if self.keyed(name):
            key = contract.TABLES[name].key
            keys = dict(
                self.con.execute(
                    f'select _row, "{key}" from _v_{name} where _row in ({", ".join(str(r) for (r,) in rows)})'
                ).fetchall()
            )
            for (row,) in rows:
                self.problems.append(Problem(file, None, column, rule, message, _key_text(key, keys[row], row)))
        else:
            for (row,) in rows:
                self.problems.append(Problem(file, self.line_of(name, row), column, rule, message))
        if total > len(rows):
            self.problems.append(Problem(file, None, column, rule, f"{total - len(rows)} more rows break this rule"))

    def line_of(self, name: str, row: int) -> int:
        path = self.files[name]
        if path.suffix == ".parquet":
            return row
        return _line_map(path, self.rejected_lines.get(name, [])).get(row, row + 1)

    def rules(self, data_through: dt.date) -> list[tuple]:
        """Every rule to check, in report order: (table, column, rule, message, where, params, scan_alone).
        A rule with scan_alone set joins or windows the table; the others are counted together in one scan."""
        out = []
        staged = [name for name in contract.TABLES if name in self.present]
        for name in staged:
            table = contract.TABLES[name]
            present = self.present[name]
            for col in table.required:
                out.append((name, col, "required", "required value is empty", f'"{col}" is null', None, False))
            for col in present:
                c = table.column(col)
                if c.allowed:
                    allowed = ", ".join(_sql_str(v) for v in c.allowed)
                    out.append(
                        (
                            name,
                            col,
                            "allowed-values",
                            f"not one of: {', '.join(c.allowed)}",
                            f'"{col}" is not null and "{col}" not in ({allowed})',
                            None,
                            False,
                        )
                    )
                if c.type == "VARCHAR":
                    out.append(
                        (name, col, "nul-byte", "contains a NUL byte", f'contains("{col}", chr(0))', None, False)
                    )
            out.append(
                (
                    name,
                    table.key,
                    "unique",
                    f"duplicate {table.key} (an earlier row has the same id)",
                    f"_row in (select _row from (select _row, row_number() over (partition by {table.key} order by _row) as k from _v_{name}) where k > 1)",
                    None,
                    True,
                )
            )
            for col, parent in table.foreign_keys.items():
                # A parent with rejected lines would make every child of those lines an orphan: noise.
                if col in present and parent in staged and not self.rejected_lines.get(parent):
                    key = contract.TABLES[parent].key
                    out.append(
                        (
                            name,
                            col,
                            "foreign-key",
                            f"no such {key} in {self.label(parent)}",
                            f'"{col}" is not null and "{col}" not in (select {key} from _s_{parent})',
                            None,
                            True,
                        )
                    )
            for col in contract.DATE_COLUMNS.get(name, ()):
                if col in present:
                    out.append(
                        (
                            name,
                            col,
                            "after-data-through",
                            f"date is after the data-through date {data_through}",
                            f'"{col}" > $through',
                            {"through": data_through},
                            False,
                        )
                    )
        for name, cols in contract.FREE_TEXT.items():  # an identifier typed into a free-text field
            for col in cols:
                if name in staged and col in self.present[name]:
                    out.append(
                        (
                            name,
                            col,
                            "identifier-like-value",
                            IDENTIFIER_MESSAGE,
                            f"regexp_matches(\"{col}\", {_sql_str(contract.IDENTIFIER_VALUE)}, 'i')",
                            None,
                            False,
                        )
                    )
        if "clients" in staged and "birth_year" in self.present["clients"]:
            out.append(
                (
                    "clients",
                    "birth_year",
                    "range",
                    f"birth year must be from 1900 to {data_through.year}",
                    "birth_year not between 1900 and $y",
                    {"y": data_through.year},
                    False,
                )
            )
        if "attendance" in staged and "duration_minutes" in self.present["attendance"]:
            out.append(
                (
                    "attendance",
                    "duration_minutes",
                    "range",
                    "duration must be from 0 to 1440 minutes",
                    "duration_minutes not between 0 and 1440",
                    None,
                    False,
                )
            )
        if "enrollments" in staged:
            cols = set(self.present["enrollments"])
            if "discharge_date" in cols:
                out.append(
                    (
                        "enrollments",
                        "discharge_date",
                        "discharge-before-admit",
                        "discharge_date is before admit_date",
                        "discharge_date < admit_date",
                        None,
                        False,
                    )
                )
            has_date = "discharge_date is not null" if "discharge_date" in cols else "false"
            has_reason = "discharge_reason is not null" if "discharge_reason" in cols else "false"
            out.append(
                (
                    "enrollments",
                    "discharge_reason",
                    "reason-without-discharge",
                    "discharge_reason given but discharge_date is empty",
                    f"{has_reason} and not ({has_date})",
                    None,
                    False,
                )
            )
            out.append(
                (
                    "enrollments",
                    "discharge_reason",
                    "discharge-without-reason",
                    "discharge_date given but discharge_reason is empty",
                    f"{has_date} and not ({has_reason})",
                    None,
                    False,
                )
            )
        return out

    def check_rules(self, data_through: dt.date) -> None:
        """Check every rule. The simple rules of a table are counted in one scan of it; only rules that some
        row breaks are then read again for the rows to report."""
        rules = self.rules(data_through)
        totals: dict[int, int] = {}
        for name in self.present:
            simple = [(i, r) for i, r in enumerate(rules) if r[0] == name and not r[6]]
            if not simple:
                continue
            params = {k: v for _, r in simple for k, v in (r[5] or {}).items()}
            counts = ", ".join(f"count(*) filter (where {r[4]})" for _, r in simple)
            found = self.con.execute(f"select {counts} from _v_{name}", params).fetchone()
            totals |= {i: n for (i, _), n in zip(simple, found)}
        for i, r in enumerate(rules):
            if r[2] == "unique" and self._ascending(r[0]):
                totals[i] = 0
        for i, (name, column, rule, message, where, params, _) in enumerate(rules):
            self._rule(name, column, rule, message, where, params, totals.get(i))

    def _ascending(self, name: str) -> bool:
        """Whether the key of `name` has no empty value and each row's key is greater than the one before.
        Then every key is distinct, whatever order the rows were compared in, and the costly duplicate search
        (a sort or hash of every key) can be skipped: extracts are often in key order."""
        key = contract.TABLES[name].key
        if key not in self.present[name]:
            return False
        empty, out_of_order = self.con.execute(
            f'select count(*) filter (where "{key}" is null), count(*) filter (where prev >= "{key}") '
            f'from (select "{key}", lag("{key}") over () as prev from _s_{name})'
        ).fetchone()
        return empty == 0 and out_of_order == 0

    def latest_date(self) -> dt.date | None:
        parts = [
            f'select max("{col}") as d from _s_{name}'
            for name, cols in contract.DATE_COLUMNS.items()
            if name in self.present
            for col in cols
            if col in self.present[name]
        ]
        return self.con.execute(f"select max(d) from ({' union all '.join(parts)})").fetchone()[0] if parts else None

    def publish_tables(self) -> None:
        for name, table in contract.TABLES.items():
            present, order = self.present[name], PUBLISH_ORDER[name]
            self.con.execute(f"drop view _v_{name}")
            if order is None and present == [c.name for c in table.columns]:
                self.con.execute(f"alter table _s_{name} rename to {name}")  # no copy of the biggest table
                continue
            cols = [
                f'"{c.name}"' if c.name in present else f'cast(null as {c.type}) as "{c.name}"' for c in table.columns
            ]
            by = f" order by {order}" if order else ""
            self.con.execute(f"create table {name} as select {', '.join(cols)} from _s_{name}{by}")
            self.con.execute(f"drop table _s_{name}")


def _key_text(key: str, value, row: int) -> str:
    """How a problem names a row by its key: `episode_id E000123`; a row without one by its number."""
    if value is None:
        return f"{key} (empty), row {row}"
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return f"{key} {text[:60]}…" if len(text) > 60 else f"{key} {text}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _line_map(path: Path, rejected: list[int]) -> dict[int, int]:
    """Map record numbers of accepted rows to file lines, allowing for quoted newlines and rejected lines."""
    cache = _line_map.__dict__.setdefault("cache", {})
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


def _current_load(db_path: Path) -> tuple[dict[str, str], dt.date | None]:
    if not db_path.exists():
        return {}, None
    try:
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            files = dict(con.execute("select table_name, sha256 from load_files").fetchall())
            through = con.execute("select data_through from load_info").fetchone()[0]
            return files, through
        finally:
            con.close()
    except duckdb.Error:
        return {}, None


def build_hash() -> str:
    """Checksum of the build SQL, so a changed model rebuilds even from identical files."""
    h = hashlib.sha256()
    for path in sorted(BUILD_DIR.glob("*.sql")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def build_models(con) -> None:
    """Run queries/_build/*.sql in name order: derived tables, macros and pre-aggregates."""
    for path in sorted(BUILD_DIR.glob("*.sql")):
        for stmt in duckdb.extract_statements(path.read_text()):
            con.execute(stmt)


def load(
    source: str | Path | TableSource,
    db_path: str | Path,
    as_of: dt.date | None = None,
    progress=None,
    prebuilt: str | Path | None = None,
) -> LoadResult:
    """Validate the four extracts in `source` (a folder, or a TableSource) and atomically replace `db_path` with
    a new database. With `prebuilt`, the load-time tables are taken from that folder (`python -m outcomes build`)
    instead of being built here.

    Raises LoadError listing every problem; on any failure `db_path` is left as it was.
    """
    started = time.monotonic()
    db_path = Path(db_path)
    report = progress or (lambda fraction, message: None)
    if isinstance(source, (str, Path)):
        source, tables = Path(source), None
        files, problems = find_files(source)
        label = source.name
    else:
        tables, label = source, source.label
        files, problems = source.find()
    if problems:
        raise LoadError(problems)
    report(0.02, "checksums")
    # A TableSource has no file to checksum, so a load from it always builds anew.
    sums = {name: checksum(path) for name, path in files.items()} if tables is None else {}
    sums["_build"] = build_hash()
    if prebuilt is not None:
        from outcomes.ingest import prebuilt as pb

        manifest = pb.read_manifest(Path(prebuilt))
        sums["_prebuilt"] = manifest.sha256
    old_sums, old_through = _current_load(db_path)
    if tables is None and old_sums == sums and (as_of is None or as_of == old_through):
        return LoadResult(db_path, False, old_through, seconds=time.monotonic() - started)

    deploy.private_dir(db_path.parent)
    for stale in db_path.parent.glob(f".{db_path.name}.building-*"):
        if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
            stale.unlink(missing_ok=True)
    tmp = db_path.parent / f".{db_path.name}.building-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(
        str(tmp), config={"autoinstall_known_extensions": False, "autoload_known_extensions": False, **LOAD_CONFIG}
    )
    try:
        build = _Build(con, files, tables)
        for i, name in enumerate(contract.TABLES):
            report(0.05 + 0.15 * i, f"reading {build.label(name)}")
            build.stage(name)
        build.check_rows()
        report(0.65, "checking rules")
        through = as_of or build.latest_date() or dt.date.today()
        build.check_rules(through)
        if build.problems:
            raise LoadError(build.problems)
        report(0.75, "building tables")
        build.publish_tables()
        rows = {name: con.execute(f"select count(*) from {name}").fetchone()[0] for name in contract.TABLES}
        if prebuilt is not None:
            problems = pb.check(manifest, sums, rows)
            if problems:
                raise LoadError(problems)
        con.execute(
            "create table load_info as select $through::date as data_through, now()::timestamp as loaded_at, "
            "$source as source_folder, $seconds::double as load_seconds",
            {"through": through, "source": label, "seconds": 0.0},
        )
        con.execute("create table load_files (table_name varchar, file_name varchar, sha256 varchar, row_count bigint)")
        for name in files:
            con.execute(
                "insert into load_files values ($t, $f, $s, $n)",
                {"t": name, "f": build.label(name), "s": sums.get(name), "n": rows[name]},
            )
        con.execute("insert into load_files values ('_build', 'queries/_build', $s, null)", {"s": sums["_build"]})
        if prebuilt is not None:
            con.execute(
                "insert into load_files values ('_prebuilt', $f, $s, null)",
                {"f": Path(prebuilt).name, "s": sums["_prebuilt"]},
            )
            report(0.85, "publishing prebuilt tables")
            pb.publish(con, manifest)
        else:
            report(0.85, "building summaries")
            build_models(con)
        con.execute("update load_info set load_seconds = $s", {"s": time.monotonic() - started})
        con.execute("checkpoint")
        con.close()
        os.chmod(tmp, 0o600)  # readable by the server's user only, whatever the umask
        _fsync(tmp)
        os.replace(tmp, db_path)
        report(1.0, "published")
        return LoadResult(db_path, True, through, rows, time.monotonic() - started, build.ignored)
    except BaseException:
        try:
            con.close()
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".wal").unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
