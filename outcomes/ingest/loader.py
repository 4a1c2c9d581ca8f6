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

import duckdb

from outcomes.ingest import contract
from outcomes.paths import BUILD_DIR
from outcomes.privacy import deploy

MAX_SHOWN = 50  # problems listed in full; the rest are counted by rule
# The value itself is never repeated: it may be the identifier.
IDENTIFIER_MESSAGE = ("value looks like an identifier (an SSN, phone or record number, a date, an e-mail or street "
                      "address); free-text fields must not hold identifiers (the value is not shown)")
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

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
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
    """Locate one CSV or Parquet file per contract table."""
    found, problems = {}, []
    for name in contract.TABLES:
        candidates = [source / f"{name}.{ext}" for ext in ("csv", "parquet") if (source / f"{name}.{ext}").exists()]
        if not candidates:
            problems.append(Problem(f"{name}.csv", None, None, "missing-file", f"no {name}.csv or {name}.parquet in {source}"))
        elif len(candidates) > 1:
            problems.append(Problem(candidates[0].name, None, None, "ambiguous-file", f"both {name}.csv and {name}.parquet exist; keep one"))
        else:
            found[name] = candidates[0]
    return found, problems


def checksum(path: Path) -> str:
    h = hashlib.sha256()
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


def _check_columns(table: contract.Table, file: str, header: list[str]) -> tuple[list[Problem], list[str]]:
    problems, ignored = [], []
    known = {c.name for c in table.columns}
    seen = set()
    for col in header:
        if col in seen:
            problems.append(Problem(file, 1, col, "duplicate-column", "column appears twice in the header"))
        seen.add(col)
        if col in known:
            continue
        kind = contract.identifier_kind(col)
        if kind:
            problems.append(Problem(file, 1, col, "privacy", f"looks like {kind}; direct identifiers must not be loaded (remove the column)"))
        else:
            ignored.append(col)
    for col in table.required:
        if col not in header:
            problems.append(Problem(file, 1, col, "missing-column", "required column is missing"))
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


class _Build:
    """One load in progress: a private database file and the problems found so far.

    Each file is staged as table _s_NAME holding its accepted rows in file order, typed as the contract says;
    the view _v_NAME adds _row, the record number (rowid + 1). Rules read the views; publishing renames a
    staged table that already has the contract's columns in order, and copies the others.
    """

    def __init__(self, con, files: dict[str, Path]):
        self.con = con
        self.files = files
        self.problems: list[Problem] = []
        self.present: dict[str, list[str]] = {}
        self.ignored: dict[str, list[str]] = {}
        self.rejected_lines: dict[str, list[int]] = {}

    def check_rows(self) -> None:
        """A file with a header and no data rows is refused (unless its rows were rejected: already reported)."""
        reported = {p.file for p in self.problems}
        for name in self.present:
            file = self.files[name].name
            if file not in reported and self.con.execute(f"select count(*) from _s_{name}").fetchone()[0] == 0:
                self.problems.append(Problem(file, None, None, "no-rows", "the file has a header but no data rows"))

    def _view(self, name: str) -> None:
        self.con.execute(f"create or replace view _v_{name} as select rowid + 1 as _row, * from _s_{name}")

    def _create_stage(self, table, columns: list[tuple[str, str]]) -> None:
        """Create the empty staging table with these (name, type) columns, and its view. The key is stored
        uncompressed: compressing 100M distinct ids costs more load time than the space it saves."""
        defs = ", ".join(f'"{c}" {t}' + (" using compression uncompressed" if c == table.key else "") for c, t in columns)
        self.con.execute(f"create table _s_{table.name} ({defs})")
        self._view(table.name)

    def stage(self, name: str) -> None:
        table, path = contract.TABLES[name], self.files[name]
        try:
            header = _parquet_header(self.con, path) if path.suffix == ".parquet" else _csv_header(path)
        except duckdb.Error:
            self.problems.append(Problem(path.name, None, None, "unreadable", "not a readable Parquet file (truncated or corrupt?)"))
            return
        except csv.Error:
            self.problems.append(Problem(path.name, 1, None, "bad-header", "the header row is not valid CSV (a line "
                                         "break or quote inside an unquoted column name?)"))
            return
        if not header:
            self.problems.append(Problem(path.name, None, None, "empty-file", "file is empty (no header row)"))
            return
        if len(header) > MAX_COLUMNS:
            self.problems.append(Problem(path.name, 1, None, "too-many-header-columns",
                                         f"{len(header):,} columns in the header; at most {MAX_COLUMNS} are read"))
            return
        if any("\x00" in col or "\r" in col or "\n" in col for col in header):
            self.problems.append(Problem(path.name, 1, None, "bad-header", "a column name holds a NUL or line-break character"))
            return
        problems, ignored = _check_columns(table, path.name, header)
        self.problems += problems
        self.ignored[name] = ignored
        if problems:
            return
        present = [c.name for c in table.columns if c.name in header]
        self.present[name] = present
        if path.suffix == ".parquet":
            self._stage_parquet(table, path, present)
        else:
            self._stage_csv(table, path, header, present)

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
            self.problems.append(Problem(path.name, None, None, "unreadable", f"could not be read as CSV: {str(exc).splitlines()[0][:200]}"))
            return
        rows = self.con.execute(f"select line, column_name, error_type from {rt} order by line").fetchall()
        self.rejected_lines[table.name] = sorted({r[0] for r in rows})
        for line, column, error in rows:
            typ = table.column(column).type.lower() if column in present else "value"
            kind = {"integer": "whole number", "date": "date (YYYY-MM-DD)", "boolean": "true/false"}.get(typ, typ)
            msg = _REJECT_MESSAGES.get(error, error.lower()).format(type=kind)
            self.problems.append(Problem(path.name, int(line), column if column in types else None, error.lower().replace(" ", "-"), msg))

    def _stage_parquet(self, table, path, present):
        try:
            stored = dict(self.con.execute(
                f"select column_name, column_type from (describe select * from read_parquet({_sql_str(path)}))").fetchall())
        except duckdb.Error:
            self.problems.append(Problem(path.name, None, None, "unreadable", "not a readable Parquet file (truncated or corrupt?)"))
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
            self.con.execute(f"insert into _s_{table.name} select {', '.join(cols)} from read_parquet({_sql_str(path)})")
        except duckdb.Error:
            self.problems.append(Problem(path.name, None, None, "unreadable", "not a readable Parquet file (truncated or corrupt?)"))
            return
        for col in checked:
            typ = table.column(col).type
            self._rule(table.name, col, "type", f"value is not a valid {typ.lower()}", f'"_raw_{col}" is not null and "{col}" is null')
        for col in checked:
            self.con.execute(f'alter table _s_{table.name} drop column "_raw_{col}"')
        if checked:
            self._view(table.name)

    def _rule(self, name: str, column: str | None, rule: str, message: str, where: str, params=None,
              total: int | None = None) -> None:
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
        file = self.files[name].name
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
                    out.append((name, col, "allowed-values", f"not one of: {', '.join(c.allowed)}",
                                f'"{col}" is not null and "{col}" not in ({allowed})', None, False))
                if c.type == "VARCHAR":
                    out.append((name, col, "nul-byte", "contains a NUL byte", f"contains(\"{col}\", chr(0))", None, False))
            out.append((
                name, table.key, "unique", f"duplicate {table.key} (an earlier row has the same id)",
                f"_row in (select _row from (select _row, row_number() over (partition by {table.key} order by _row) as k from _v_{name}) where k > 1)",
                None, True))
            for col, parent in table.foreign_keys.items():
                # A parent with rejected lines would make every child of those lines an orphan: noise.
                if col in present and parent in staged and not self.rejected_lines.get(parent):
                    key = contract.TABLES[parent].key
                    out.append((name, col, "foreign-key", f"no such {key} in {self.files[parent].name}",
                                f'"{col}" is not null and "{col}" not in (select {key} from _s_{parent})', None, True))
            for col in contract.DATE_COLUMNS.get(name, ()):
                if col in present:
                    out.append((name, col, "after-data-through", f"date is after the data-through date {data_through}",
                                f'"{col}" > $through', {"through": data_through}, False))
        for name, cols in contract.FREE_TEXT.items():  # an identifier typed into a free-text field
            for col in cols:
                if name in staged and col in self.present[name]:
                    out.append((name, col, "identifier-like-value", IDENTIFIER_MESSAGE,
                                f'regexp_matches("{col}", {_sql_str(contract.IDENTIFIER_VALUE)}, \'i\')', None, False))
        if "clients" in staged and "birth_year" in self.present["clients"]:
            out.append(("clients", "birth_year", "range", f"birth year must be from 1900 to {data_through.year}",
                        "birth_year not between 1900 and $y", {"y": data_through.year}, False))
        if "attendance" in staged and "duration_minutes" in self.present["attendance"]:
            out.append(("attendance", "duration_minutes", "range", "duration must be from 0 to 1440 minutes",
                        "duration_minutes not between 0 and 1440", None, False))
        if "enrollments" in staged:
            cols = set(self.present["enrollments"])
            if "discharge_date" in cols:
                out.append(("enrollments", "discharge_date", "discharge-before-admit", "discharge_date is before admit_date",
                            "discharge_date < admit_date", None, False))
            has_date = "discharge_date is not null" if "discharge_date" in cols else "false"
            has_reason = "discharge_reason is not null" if "discharge_reason" in cols else "false"
            out.append(("enrollments", "discharge_reason", "reason-without-discharge",
                        "discharge_reason given but discharge_date is empty", f"{has_reason} and not ({has_date})", None, False))
            out.append(("enrollments", "discharge_reason", "discharge-without-reason",
                        "discharge_date given but discharge_reason is empty", f"{has_date} and not ({has_reason})", None, False))
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
            f'from (select "{key}", lag("{key}") over () as prev from _s_{name})').fetchone()
        return empty == 0 and out_of_order == 0

    def latest_date(self) -> dt.date | None:
        parts = [f"select max(\"{col}\") as d from _s_{name}" for name, cols in contract.DATE_COLUMNS.items()
                 if name in self.present for col in cols if col in self.present[name]]
        return self.con.execute(f"select max(d) from ({' union all '.join(parts)})").fetchone()[0] if parts else None

    def publish_tables(self) -> None:
        for name, table in contract.TABLES.items():
            present, order = self.present[name], PUBLISH_ORDER[name]
            self.con.execute(f"drop view _v_{name}")
            if order is None and present == [c.name for c in table.columns]:
                self.con.execute(f"alter table _s_{name} rename to {name}")  # no copy of the biggest table
                continue
            cols = [f'"{c.name}"' if c.name in present else f'cast(null as {c.type}) as "{c.name}"' for c in table.columns]
            by = f" order by {order}" if order else ""
            self.con.execute(f"create table {name} as select {', '.join(cols)} from _s_{name}{by}")
            self.con.execute(f"drop table _s_{name}")


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


def load(source: str | Path, db_path: str | Path, as_of: dt.date | None = None, progress=None) -> LoadResult:
    """Validate the four extracts in `source` and atomically replace `db_path` with a new database.

    Raises LoadError listing every problem; on any failure `db_path` is left as it was.
    """
    started = time.monotonic()
    source, db_path = Path(source), Path(db_path)
    report = progress or (lambda fraction, message: None)
    files, problems = find_files(source)
    if problems:
        raise LoadError(problems)
    report(0.02, "checksums")
    sums = {name: checksum(path) for name, path in files.items()}
    sums["_build"] = build_hash()
    old_sums, old_through = _current_load(db_path)
    if old_sums == sums and (as_of is None or as_of == old_through):
        return LoadResult(db_path, False, old_through, seconds=time.monotonic() - started)

    deploy.private_dir(db_path.parent)
    for stale in db_path.parent.glob(f".{db_path.name}.building-*"):
        if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
            stale.unlink(missing_ok=True)
    tmp = db_path.parent / f".{db_path.name}.building-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp), config={"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                                           **LOAD_CONFIG})
    try:
        build = _Build(con, files)
        for i, name in enumerate(contract.TABLES):
            report(0.05 + 0.15 * i, f"reading {files[name].name}")
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
        con.execute(
            "create table load_info as select $through::date as data_through, now()::timestamp as loaded_at, "
            "$source as source_folder, $seconds::double as load_seconds",
            {"through": through, "source": source.name, "seconds": 0.0},
        )
        con.execute("create table load_files (table_name varchar, file_name varchar, sha256 varchar, row_count bigint)")
        for name, path in files.items():
            con.execute("insert into load_files values ($t, $f, $s, $n)", {"t": name, "f": path.name, "s": sums[name], "n": rows[name]})
        con.execute("insert into load_files values ('_build', 'queries/_build', $s, null)", {"s": sums["_build"]})
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
