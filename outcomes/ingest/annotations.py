"""The optional fifth extract, `annotations`: program events drawn on the charts, validated like the other four
(types, dates, known sites, identifier-like text refused, the value never repeated in a message) and published
as the `annotations` table. No file: an empty table, so every load path (CSV, Parquet, lake, PostgreSQL, Spark)
works without one.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import duckdb
import pandas as pd

from outcomes.ingest import contract
from outcomes.ingest.problems import Problem
from outcomes.ingest.rules import IDENTIFIER_MESSAGE
from outcomes.ingest.sources import checksum

TABLE = contract.ANNOTATIONS
NAMES = tuple(c.name for c in TABLE.columns)
MAX_ROWS = 100_000  # events, not sessions: a file this long is a wrong file
CREATE = (
    "create table annotations (annotation_id varchar, start_date date, end_date date, site varchar, "
    "label varchar, category varchar)"
)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def find(source: Path) -> tuple[Path | None, list[Problem]]:
    """The annotations file in a folder of extracts: annotations.csv or .parquet, or none."""
    found = [source / f"annotations.{ext}" for ext in ("csv", "parquet") if (source / f"annotations.{ext}").is_file()]
    if len(found) > 1:
        return None, [
            Problem(found[0].name, None, None, "ambiguous-file", "annotations.csv and annotations.parquet both exist")
        ]
    return (found[0] if found else None), []


def _text(value) -> str | None:
    # a Parquet cell as the CSV would hold it: dates as YYYY-MM-DD, missing as None
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()[:10]
    return str(value)


def read(path: Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Every column as text (empty = missing), with the line (CSV) or row (Parquet) of each record in `_line`."""
    if path.suffix == ".parquet":
        try:
            frame = duckdb.sql(f"select * from read_parquet('{str(path).replace(chr(39), chr(39) * 2)}')").df()
        except duckdb.Error:
            return None, [Problem(path.name, None, None, "unreadable", "not a readable Parquet file")]
        header = list(frame.columns)
        frame = frame.astype(object).map(_text)
        frame["_line"] = range(1, len(frame) + 1)
    else:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            return None, [Problem(path.name, None, None, "encoding", "not UTF-8 text")]
        reader = csv.reader(io.StringIO(text, newline=""))
        header, rows, lines, problems, last = None, [], [], [], 0
        try:
            for record in reader:
                first, last = last + 1, reader.line_num
                if header is None:
                    header = [h.strip() for h in record]
                    continue
                if not any(v.strip() for v in record):
                    continue
                if len(record) != len(header):
                    problems.append(
                        Problem(
                            path.name, first, None, "field-count", f"{len(record)} fields, the header has {len(header)}"
                        )
                    )
                    continue
                rows.append(record)
                lines.append(first)
        except csv.Error:
            return None, [Problem(path.name, last + 1, None, "csv", "malformed CSV (an unclosed quote?)")]
        if header is None:
            return None, [Problem(path.name, None, None, "empty-file", "no header row")]
        if problems:
            return None, problems
        frame = pd.DataFrame(rows, columns=header, dtype=object)
        frame = frame.map(lambda v: v if v.strip() else None)
        frame["_line"] = lines
    problems = []
    for col in header:
        kind = contract.identifier_kind(col)
        if kind:
            problems.append(
                Problem(
                    path.name,
                    None,
                    col,
                    "identifier-column",
                    f"looks like {kind}; direct identifiers must not be loaded (remove the column)",
                )
            )
    problems += [
        Problem(path.name, None, c, "missing-column", "required column is missing")
        for c in TABLE.required
        if c not in header
    ]
    if len(frame) > MAX_ROWS:
        problems.append(Problem(path.name, None, None, "too-many-rows", f"more than {MAX_ROWS:,} events"))
    if problems:
        return None, problems
    for c in NAMES:
        if c not in frame:
            frame[c] = None
    return frame[[*NAMES, "_line"]], []


def _cells(frame: pd.DataFrame, col: str) -> list[str | None]:
    # pandas may hold a missing text as None or NaN: one kind of missing here
    return [v if isinstance(v, str) else None for v in frame[col]]


def check(frame: pd.DataFrame, file: str, sites: set[str] | None, enrollments: str = "enrollments") -> list[Problem]:
    """Every rule on every row, in line order; a message names the file, line and column, never the value.
    `sites` None: the sites are not known (enrollments did not stage), so they are not checked."""
    out: list[tuple[int, int, Problem]] = []
    cells = {c: _cells(frame, c) for c in NAMES}

    def problem(i: int, col: str, rule: str, message: str) -> None:
        line = int(frame["_line"].iloc[i])
        out.append((line, NAMES.index(col), Problem(file, line, col, rule, message)))

    dates: dict[str, list] = {}
    for col in ("start_date", "end_date"):
        parsed = []
        for i, v in enumerate(cells[col]):
            day = None
            if v is not None:
                try:
                    day = dt.date.fromisoformat(v.strip()) if _ISO.fullmatch(v.strip()) else None
                except ValueError:
                    day = None
                if day is None:
                    problem(i, col, "type", "not a date (YYYY-MM-DD)")
            parsed.append(day)
        dates[col] = parsed
    seen: set[str] = set()
    for i in range(len(frame)):
        for col in TABLE.required:
            if cells[col][i] is None:
                problem(i, col, "required", "required value is empty")
        key = cells["annotation_id"][i]
        if key is not None:
            if key.strip() in seen:
                problem(i, "annotation_id", "unique", "duplicate annotation_id (an earlier row has the same id)")
            seen.add(key.strip())
        start, end = dates["start_date"][i], dates["end_date"][i]
        if start and end and end < start:
            problem(i, "end_date", "end-before-start", "end_date is before start_date")
        site = cells["site"][i]
        if site is not None and sites is not None and site.strip() not in sites:
            problem(i, "site", "foreign-key", f"not a site in {enrollments} (empty means all sites)")
        for col, limit in (("label", contract.LABEL_MAX), ("category", contract.CATEGORY_MAX)):
            value = cells[col][i]
            if value is None:
                continue
            if _CONTROL.search(value):
                problem(i, col, "one-line", "holds a line break or another control character")
            if len(value.strip()) > limit:
                problem(i, col, "length", f"longer than {limit} characters")
        for col in ("annotation_id", "site"):
            value = cells[col][i]
            if value is not None and "\x00" in value:
                problem(i, col, "nul-byte", "contains a NUL byte")
    for col in contract.OPTIONAL_FREE_TEXT["annotations"]:
        for i in _identifier_like(cells[col]):
            problem(i, col, "identifier-like-value", IDENTIFIER_MESSAGE)
    out.sort(key=lambda x: (x[0], x[1]))
    return [p for _, _, p in out]


def _identifier_like(values: list[str | None]) -> list[int]:
    """Positions of the values the loader's identifier pattern matches (RE2, in DuckDB, as for the other four)."""
    texts = pd.DataFrame({"i": range(len(values)), "v": pd.Series(values, dtype="string")})
    con = duckdb.connect()
    try:
        con.register("t", texts)
        return [
            r[0]
            for r in con.execute(
                "select i from t where v is not null and regexp_matches(v, $p, 'i') order by i",
                {"p": contract.IDENTIFIER_VALUE},
            ).fetchall()
        ]
    finally:
        con.close()


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """The checked rows as the published table holds them: dates as dates, text trimmed, empty as missing."""

    def text(col):
        return [None if v is None else v.strip() for v in _cells(frame, col)]

    def day(col):
        return [None if v is None else dt.date.fromisoformat(v.strip()) for v in _cells(frame, col)]

    return pd.DataFrame(
        {
            "annotation_id": text("annotation_id"),
            "start_date": day("start_date"),
            "end_date": day("end_date"),
            "site": text("site"),
            "label": text("label"),
            "category": text("category"),
        }
    )


def publish(con, rows: pd.DataFrame | None) -> int:
    """Create the `annotations` table in the database being built, empty without rows; returns its row count."""
    con.execute(CREATE)
    if rows is not None and len(rows):
        con.register("_annotations_rows", rows)
        try:
            con.execute(
                "insert into annotations select annotation_id, start_date::date, end_date::date, site, label, "
                "category from _annotations_rows order by start_date, annotation_id"
            )
        finally:
            con.unregister("_annotations_rows")
    return con.execute("select count(*) from annotations").fetchone()[0]


class Extract:
    """The annotations of one load: its file's checksum (so a changed file loads again), its checks against the
    staged enrollments' sites, and the published table. `source` None (a PostgreSQL or other table source):
    no annotations."""

    def __init__(self, source: Path | None):
        self.path, self.problems = find(source) if isinstance(source, Path) else (None, [])
        self.sums = {"annotations": checksum(self.path)} if self.path else {}
        self.rows: pd.DataFrame | None = None

    def check(self, con) -> list[Problem]:
        """The problems of the file (call after the four tables are staged and checked)."""
        if self.path is None or self.problems:
            return self.problems
        frame, problems = read(self.path)
        if frame is None:
            return problems
        try:
            found = con.execute("select distinct site from _s_enrollments where site is not null").fetchall()
            sites = {r[0] for r in found}
        except duckdb.Error:  # enrollments could not be staged (reported already): sites are checked next time
            sites = None
        problems = check(frame, self.path.name, sites)
        self.rows = None if problems else typed(frame)
        return problems

    def publish(self, con) -> dict[str, int]:
        """The `annotations` table, and its line in load_files when there is a file; returns its row count by
        table name when there is a file (the load's row counts name the files loaded)."""
        n = publish(con, self.rows)
        if self.path is None:
            return {}
        con.execute(
            "insert into load_files values ('annotations', $f, $s, $n)",
            {"f": self.path.name, "s": self.sums["annotations"], "n": n},
        )
        return {"annotations": n}
