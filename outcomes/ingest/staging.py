"""Staging a load: each extract read into a private database as typed rows, and problems named by line or key."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from outcomes.ingest import contract
from outcomes.ingest.problems import MAX_SHOWN, Problem, first_line, key_text
from outcomes.ingest.sources import (
    MAX_COLUMNS,
    MAX_LINE_BYTES,
    REJECT_MESSAGES,
    TableSource,
    check_columns,
    csv_header,
    file_label,
    lake_files,
    line_map,
    parquet_header,
    sql_str,
)


class Staging:
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
        return file_label(where) if isinstance(where, Path) else where

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
            header = parquet_header(self.con, path) if path.suffix == ".parquet" else csv_header(path)
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
                table, f"read_parquet({sql_str(path)})", present, "not a readable Parquet file (truncated or corrupt?)"
            )
        else:
            self._stage_csv(table, path, header, present)

    def _columns(self, table, header: list[str]) -> list[str] | None:
        """The contract columns present, or None when the header breaks a rule."""
        problems, ignored = check_columns(table, self.label(table.name), header, None if self.keyed(table.name) else 1)
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
        types = "{" + ", ".join(f"{sql_str(k)}: 'VARCHAR'" for k in keys) + "}"
        scan = f"read_parquet([{', '.join(sql_str(f) for f in files)}], union_by_name=true" + (
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
            self.problems.append(Problem(label, None, None, "unreadable", f"could not be read: {first_line(exc)}"))
            return
        try:
            self._stage_parquet(table, view, present, "could not be read")
        finally:
            self.con.unregister(view)

    def _stage_csv(self, table, path, header, present):
        types = {col: (table.column(col).type if col in present else "VARCHAR") for col in header}
        spec = "{" + ", ".join(f"{sql_str(c)}: {sql_str(t)}" for c, t in types.items()) + "}"
        select = ", ".join(f'"{c}"' for c in present)
        rt = f"rejects_{table.name}"
        self._create_stage(table, [(c, types[c]) for c in present])
        try:
            self.con.execute(
                f"insert into _s_{table.name} select {select} "
                f"from read_csv({sql_str(path)}, header=true, auto_detect=false, delim=',', quote='\"', "
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
            msg = REJECT_MESSAGES.get(error, error.lower()).format(type=kind)
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
            detail = f": {first_line(exc)}" if unreadable == "could not be read" else ""
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
                self.problems.append(Problem(file, None, column, rule, message, key_text(key, keys[row], row)))
        else:
            for (row,) in rows:
                self.problems.append(Problem(file, self.line_of(name, row), column, rule, message))
        if total > len(rows):
            self.problems.append(Problem(file, None, column, rule, f"{total - len(rows)} more rows break this rule"))

    def line_of(self, name: str, row: int) -> int:
        path = self.files[name]
        if path.suffix == ".parquet":
            return row
        return line_map(path, self.rejected_lines.get(name, [])).get(row, row + 1)
