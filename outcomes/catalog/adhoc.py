"""Ad-hoc SQL: one read-only SELECT on the hardened connection, with a time limit, a row cap and suppression.

Ad-hoc SQL has no header, so nothing says which columns are counts. Suppression is therefore conservative
(`suppress_unknown`): every integer column is treated as a count and its cells from 1 to 10 are hidden; every
non-integer number (double, float, decimal with a fraction) is hidden on each row where any count is from 1 to 10;
nested columns holding numbers (lists, structs, maps, arrays) are hidden on every row. Why each cell is hidden is
in `AdhocResult.reasons` (`unknown_reasons`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from outcomes.catalog import runner
from outcomes.privacy import suppress as sup

DEFAULT_TIMEOUT = runner.DEFAULT_TIMEOUT
DEFAULT_MAX_ROWS = runner.DEFAULT_MAX_ROWS

# Statement types that only read: select, with ... select, from ..., values, describe, show, summarize, unpivot.
READ_ONLY = frozenset({duckdb.StatementType.SELECT})

_INTEGER = re.compile(r"^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|DECIMAL\(\d+,\s*0\))$")
_MEASURE = re.compile(r"^(FLOAT|DOUBLE|REAL|DECIMAL\(\d+,\s*[1-9]\d*\))$")
_NUMERIC_WORD = re.compile(r"\b(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|FLOAT|DOUBLE|REAL|DECIMAL)\b")
_NESTED = re.compile(r"(\[\d*\]$|^(STRUCT|MAP|UNION)\()")

# What each refused statement type is, for the message.
_KINDS = {
    "COPY": "COPY writes or reads files",
    "ATTACH": "ATTACH opens another database",
    "DETACH": "DETACH changes the open databases",
    "LOAD": "INSTALL and LOAD add extensions",
    "SET": "SET, RESET and USE change the configuration",
    "VARIABLE_SET": "SET VARIABLE changes the session",
    "PRAGMA": "PRAGMA changes or inspects the configuration",
    "CREATE": "CREATE makes new objects",
    "CREATE_FUNC": "CREATE MACRO makes new objects",
    "INSERT": "INSERT changes data",
    "UPDATE": "UPDATE changes data",
    "DELETE": "DELETE changes data",
    "MERGE_INTO": "MERGE changes data",
    "DROP": "DROP removes objects",
    "ALTER": "ALTER changes objects",
    "EXPORT": "EXPORT writes files",
    "COPY_DATABASE": "COPY DATABASE writes another database",
    "CALL": "CALL runs procedures",
    "TRANSACTION": "transactions are not needed to read",
    "EXPLAIN": "EXPLAIN is not a query (run the SELECT itself)",
    "MULTI": "PIVOT statements run several statements (write it with group by, or use UNPIVOT)",
}


class Refused(ValueError):
    """The SQL was refused before it ran: not exactly one read-only statement."""


class QueryFailed(ValueError):
    """DuckDB refused or failed the statement; the message is one line."""


@dataclass
class AdhocResult:
    data: pd.DataFrame  # suppressed unless raw
    mask: pd.DataFrame  # cells hidden by suppression
    counts: list[str]  # columns treated as counts
    truncated: bool
    seconds: float
    raw: bool
    sql: str  # the statement that ran
    reasons: pd.DataFrame | None = None  # why each hidden cell is hidden (see unknown_reasons), else ""


def statement(sql: str) -> str:
    """The single read-only statement in `sql`; raises Refused, before anything runs, for anything else."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryFailed(one_line(exc)) from None
    if not statements:
        raise Refused("refused: no SQL statement to run")
    if len(statements) > 1:
        raise Refused(f"refused: {len(statements)} statements; ad-hoc SQL runs exactly one")
    st = statements[0]
    if st.type not in READ_ONLY:
        kind = st.type.name
        why = _KINDS.get(kind, f"{kind} statements are not queries")
        raise Refused(f"refused: {why}; ad-hoc SQL runs one read-only query "
                      "(select, with, from, values, describe, show, summarize)")
    text = st.query.strip()
    return text[:-1].rstrip() if text.endswith(";") else text


def one_line(exc: BaseException) -> str:
    """DuckDB's error as one clear line."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, duckdb.PermissionException) or "disabled by configuration" in text:
        target = re.search(r'"([^"]*)"', first)
        what = f" ({target.group(1)})" if target else ""
        return f"file and network access is switched off{what}: ad-hoc SQL reads only the tables in the database"
    if isinstance(exc, duckdb.InvalidInputException) and "Values were not provided" in text:
        names = first.split(":")[-1].strip()
        return f"ad-hoc SQL takes no $parameters ({names}): write the values in, or save it as a catalog query"
    if "extension" in first.lower():
        return f"{first} (extensions cannot be installed or loaded here)"
    if "lock_configuration" in text or "configuration has been locked" in text.lower():
        return "the configuration is locked: settings cannot be changed"
    return first


def column_types(con, sql: str) -> list[str]:
    """DuckDB type of each result column, from binding the statement (nothing runs)."""
    cur = con.cursor()
    try:
        return [str(t) for t in cur.sql(sql).types]
    finally:
        cur.close()


def _kind(duck_type: str) -> str:
    t = duck_type.upper()
    if _INTEGER.match(t):
        return "count"
    if _MEASURE.match(t):
        return "measure"
    if _NESTED.search(t) and _NUMERIC_WORD.search(t):
        return "nested"
    return "key"


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name}_{k + 1}")
    return out


def typed(df: pd.DataFrame, types: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Columns renamed to be unique, counts as nullable integers, measures as floats; and each column's kind."""
    out = df.copy()
    out.columns = _unique([str(c) for c in df.columns])
    kinds = {}
    for col, duck_type in zip(out.columns, types):
        kind = _kind(duck_type)
        kinds[col] = kind
        if kind == "count":
            values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else int(v) for v in out[col]]
            try:
                out[col] = pd.array(values, dtype="Int64")
            except (OverflowError, TypeError, ValueError):  # beyond 64 bits: keep Python integers
                out[col] = pd.Series(values, index=out.index, dtype=object)
        elif kind == "measure":
            out[col] = pd.to_numeric(out[col].map(lambda v: np.nan if v is None else float(v)), errors="coerce")
    for col in out.columns[len(types):]:  # no type known: be careful
        kinds[col] = "count" if pd.api.types.is_integer_dtype(out[col]) else "measure" \
            if pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(out[col]) else "key"
    return out, kinds


def suppress_unknown(df: pd.DataFrame, kinds: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Conservative suppression for a table without a header: (suppressed table, mask of hidden cells).

    Integer columns are counts: 1 to 10 is hidden. Non-integer numbers are hidden on every row where any count
    is from 1 to 10. Nested columns holding numbers are hidden on every row. Without `kinds`, columns are
    classified by their pandas dtype.
    """
    if kinds is None:
        kinds = {}
        for col in df.columns:
            s = df[col]
            if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
                kinds[col] = "key"
            elif pd.api.types.is_integer_dtype(s):
                kinds[col] = "count"
            else:
                kinds[col] = "measure"
    counts = [c for c in df.columns if kinds.get(c) == "count"]
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    for col in counts:
        mask[col] = sup._small(df[col]).fillna(False).astype(bool)
    small_row = mask[counts].any(axis=1) if counts else pd.Series(False, index=df.index)
    for col in df.columns:
        if kinds.get(col) == "measure":
            mask[col] = small_row
        elif kinds.get(col) == "nested":
            mask[col] = True
    out = df.copy()
    for col in df.columns:
        if mask[col].any():
            if pd.api.types.is_integer_dtype(out[col]):
                out[col] = out[col].astype("Int64")
                out.loc[mask[col], col] = pd.NA
            elif pd.api.types.is_numeric_dtype(out[col]) and not pd.api.types.is_bool_dtype(out[col]):
                out[col] = out[col].astype("float64")
                out.loc[mask[col], col] = np.nan
            else:
                out[col] = out[col].astype(object)
                out.loc[mask[col], col] = None
    return out, mask


def unknown_reasons(mask: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Why `suppress_unknown` hid each cell: a count of 1 to 10, and a measure on a row with one, are SMALL
    (suppress.SMALL); a nested column, hidden on every row whatever it holds, is COMPLEMENT."""
    out = pd.DataFrame("", index=mask.index, columns=mask.columns, dtype=object)
    for col in mask.columns:
        hidden = mask[col].to_numpy(dtype=bool)
        out[col] = np.where(hidden, sup.COMPLEMENT if kinds.get(col) == "nested" else sup.SMALL, "")
    return out


def run(con, sql: str, raw: bool = False, timeout: float | None = DEFAULT_TIMEOUT,
        max_rows: int | None = DEFAULT_MAX_ROWS) -> AdhocResult:
    """Run one read-only statement on a fresh cursor of `con` (use outcomes.ingest.db.connect, read-only and hardened).

    Raises Refused (not a single read-only statement; nothing ran), QueryFailed (DuckDB's error in one line) or
    runner.QueryTimeout (stopped at the time limit).
    """
    text = statement(sql)
    try:
        types = column_types(con, text)
        started = time.monotonic()
        df, truncated = runner.execute(con, text, {}, timeout, max_rows)
        seconds = time.monotonic() - started
    except runner.QueryTimeout:
        raise
    except duckdb.Error as exc:
        raise QueryFailed(one_line(exc)) from None
    data, kinds = typed(df, types)
    counts = [c for c, k in kinds.items() if k == "count"]
    if raw:
        mask = pd.DataFrame(False, index=data.index, columns=data.columns)
    else:
        data, mask = suppress_unknown(data, kinds)
    return AdhocResult(data, mask, counts, truncated, seconds, raw, text, unknown_reasons(mask, kinds))


def screen(result: AdhocResult) -> pd.DataFrame:
    """Text version for the terminal, in the labels of `suppress.for_screen`: a hidden count reads "1–10", a
    measure hidden beside one "too few", a hidden nested column "hidden"."""
    from outcomes.present.files import plain_dates

    return sup.for_screen(plain_dates(result.data), result.mask, {"counts": result.counts}, result.reasons)


def tables(con) -> pd.DataFrame:
    """The tables and views ad-hoc SQL can read, with their columns."""
    cur = con.cursor()
    try:
        return cur.execute(
            "select table_name as \"table\", string_agg(column_name || ' ' || lower(data_type), ', ' "
            "order by ordinal_position) as columns "
            "from information_schema.columns where table_schema = 'main' group by table_name order by table_name"
        ).df()
    finally:
        cur.close()
