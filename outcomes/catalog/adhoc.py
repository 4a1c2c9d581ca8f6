"""Ad-hoc SQL: one read-only SELECT on the hardened connection, with a time limit, a row cap and suppression.

Ad-hoc SQL has no header, so nothing says which columns are counts. Suppression is therefore conservative and
decided cell by cell (`suppress_unknown`), whatever the SQL type a value was given:

- a whole number (an integer, a float holding 5.0, a decimal 5.00, a string '7', '0007', ' 7 ' or '1e1') is a
  count: 1 to 10 (or -1 to -10) is hidden, and the row is marked as holding a small count;
- text is searched for numbers: any run of digits (any script: '٥', '５'; leading zeros ignored) or numeric
  character ('⑤', 'Ⅴ', '五') equal to 1..10 hides the cell as a small count ('n=5', '{"n": 5}', '2025-01-05');
  text with other numbers is hidden on rows with a small count; text without a digit is shown as text;
- other numbers (fractions, or whole numbers of a float or decimal column) are hidden on rows with a small count;
- a list, array, struct, map or union is hidden on every row when it holds any number or any text with a digit
  (and marks the row when one of them is a small count); intervals and times are read as their text;
- blobs, bit strings and bignums are hidden whenever they are not null;
- booleans, dates and timestamps are shown.

What this cannot catch is a count deliberately encoded as something else: `n + 0.5`, `n / 7`, `repeat('x', n)`,
`chr(64 + n)`, a date built from it, `n = 5` as a boolean, number words. Ad-hoc SQL needs the `raw` right
anyway; every statement is in the audit log in full. See docs/security.md. Why each cell is hidden is in
`AdhocResult.reasons` (`unknown_reasons`).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

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
        raise Refused(
            f"refused: {why}; ad-hoc SQL runs one read-only query "
            "(select, with, from, values, describe, show, summarize)"
        )
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


_KEY = re.compile(r"^(BOOLEAN|DATE|TIMESTAMP.*|\"NULL\")$")
_OPAQUE = re.compile(r"^(BLOB|BIT|BIGNUM|VARINT)$")


def _kind(duck_type: str) -> str:
    """count (integer types), measure (float, decimal), nested, key (boolean, date, timestamp), opaque, text."""
    t = duck_type.upper()
    if _INTEGER.match(t):
        return "count"
    if _MEASURE.match(t):
        return "measure"
    if _NESTED.search(t):
        return "nested"
    if _KEY.match(t):
        return "key"
    if _OPAQUE.match(t):
        return "opaque"
    return "text"


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
        elif duck_type.upper() == "INTERVAL":
            out[col] = pd.Series(
                [None if v is None else interval_text(v) for v in out[col]], index=out.index, dtype=object
            )
    for col in out.columns[len(types) :]:  # no type known: be careful
        kinds[col] = _pandas_kind(out[col])
    return out, kinds


def _pandas_kind(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s):
        return "key"
    if pd.api.types.is_integer_dtype(s):
        return "count"
    if pd.api.types.is_numeric_dtype(s):
        return "measure"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "key"
    return "text"


def interval_text(v) -> str:
    """An interval (DuckDB's timedelta or Arrow's MonthDayNano) as text: '1 month 5 days 02:00:00'."""
    if isinstance(v, dt.timedelta):
        months, days, micros = 0, v.days, v.seconds * 1_000_000 + v.microseconds
    else:
        months, days, micros = v.months, v.days, v.nanoseconds // 1000
    parts = []
    if months:
        parts.append(f"{months} month{'s' if abs(months) != 1 else ''}")
    if days or not (months or micros):
        parts.append(f"{days} day{'s' if abs(days) != 1 else ''}")
    if micros:
        sign, micros = ("-" if micros < 0 else ""), abs(micros)
        secs, us = divmod(micros, 1_000_000)
        text = f"{sign}{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        parts.append(text + (f".{us:06d}" if us else ""))
    return " ".join(parts)


# What a cell is, for suppression: shown; a small count (hidden, and hides the row's other numbers); another
# number (hidden on a row with a small count); hidden always.
SHOWN, SMALL, NUMBER, ALWAYS = 0, 1, 2, 3


def _missing(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and np.isnan(v)


def _small(x) -> bool:
    """Whether a number is a whole number from 1 to 10 (either sign)."""
    try:
        a = abs(x)
        if not 1 <= a <= 10:
            return False
        return a == int(a) or (isinstance(a, float) and abs(a - round(a)) <= 1e-9)
    except (TypeError, ValueError, OverflowError, InvalidOperation):
        return False


def _whole(x) -> bool:
    try:
        if isinstance(x, float) and not np.isfinite(x):
            return False
        return x == int(x)
    except (TypeError, ValueError, OverflowError, InvalidOperation):
        return False


def numbers_in(text: str) -> list:
    """The numbers written in `text`: runs of digits of any script (leading zeros ignored; runs over 10 read as
    11, which is all suppression needs), and numeric characters such as '⑤', 'Ⅻ', '½' or '五' on their own."""
    out, run = [], None
    for ch in text:
        if ch.isdigit():
            d = unicodedata.digit(ch, None)
            if d is not None:
                run = d if run is None else min(run * 10 + d, 11)
                continue
        if run is not None:
            out.append(run)
            run = None
        if ch.isnumeric():
            out.append(unicodedata.numeric(ch, 0))
    if run is not None:
        out.append(run)
    return out


def _text_cell(text: str) -> int:
    found = numbers_in(text)
    if not found:
        return SHOWN
    return SMALL if any(_small(x) for x in found) else NUMBER


_NUMBERS = (int, float, Decimal, np.integer, np.floating)


def _leaves(v, depth: int = 0):
    if depth > 50:
        yield v
        return
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _leaves(k, depth + 1)
            yield from _leaves(x, depth + 1)
    elif isinstance(v, (list, tuple, set, frozenset, np.ndarray)):
        for x in v:
            yield from _leaves(x, depth + 1)
    else:
        yield v


def cell(v, kind: str = "text") -> int:
    """What one value is for suppression (SHOWN, SMALL, NUMBER or ALWAYS), given its column's kind."""
    if isinstance(v, (list, tuple, dict, set, frozenset, np.ndarray)):
        found = {cell(x, "measure") for x in _leaves(v) if not _missing(x)}
        return SMALL if SMALL in found else ALWAYS if found - {SHOWN} else SHOWN
    if _missing(v):
        return SHOWN
    if kind == "opaque" or isinstance(v, (bytes, bytearray, memoryview)):
        return ALWAYS
    if kind == "key" or isinstance(v, (bool, np.bool_, dt.date, pd.Timestamp)):
        return SHOWN
    if isinstance(v, _NUMBERS):
        if _small(v):
            return SMALL
        return SHOWN if kind == "count" and _whole(v) else NUMBER
    if isinstance(v, dt.timedelta) or type(v).__name__ == "MonthDayNano":
        return _text_cell(interval_text(v))
    return _text_cell(str(v))


def _column_cells(s: pd.Series, kind: str) -> np.ndarray:
    if kind in ("count", "measure") and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        x = pd.to_numeric(s, errors="coerce").astype("float64").to_numpy(na_value=np.nan)
        finite = np.isfinite(x)
        whole = finite & (np.abs(x - np.round(x)) <= 1e-9)
        small = whole & (np.abs(x) >= 1) & (np.abs(x) <= 10)
        other = ~np.isnan(x) & ~small
        if kind == "count":
            other &= ~whole
        return np.where(small, SMALL, np.where(other, NUMBER, SHOWN))
    return np.array([cell(v, kind) for v in s], dtype=int)


def suppress_unknown(df: pd.DataFrame, kinds: dict[str, str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Conservative suppression for a table without a header: (suppressed table, mask of hidden cells).

    Cell by cell, as the module docstring says: small counts of any type are hidden; other numbers, and text
    holding numbers, are hidden on rows with a small count; nested values holding numbers always. Without
    `kinds`, columns are classified by their pandas dtype.
    """
    if kinds is None:
        kinds = {col: _pandas_kind(df[col]) for col in df.columns}
    cells = {col: _column_cells(df[col], kinds.get(col, "text")) for col in df.columns}
    small_row = np.zeros(len(df), dtype=bool)
    for values in cells.values():
        small_row |= values == SMALL
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    for col, values in cells.items():
        mask[col] = (values == SMALL) | (values == ALWAYS) | ((values == NUMBER) & small_row)
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
    (suppress.SMALL); a nested or opaque column, hidden whatever it holds, is COMPLEMENT."""
    out = pd.DataFrame("", index=mask.index, columns=mask.columns, dtype=object)
    for col in mask.columns:
        hidden = mask[col].to_numpy(dtype=bool)
        out[col] = np.where(hidden, sup.COMPLEMENT if kinds.get(col) in ("nested", "opaque") else sup.SMALL, "")
    return out


def result(
    df: pd.DataFrame, types: list[str], sql: str, raw: bool = False, truncated: bool = False, seconds: float = 0.0
) -> AdhocResult:
    """An AdhocResult from fetched rows and their DuckDB types: typed, and suppressed unless `raw`."""
    data, kinds = typed(df, types)
    counts = [c for c, k in kinds.items() if k == "count"]
    if raw:
        mask = pd.DataFrame(False, index=data.index, columns=data.columns)
    else:
        data, mask = suppress_unknown(data, kinds)
    return AdhocResult(data, mask, counts, truncated, seconds, raw, sql, unknown_reasons(mask, kinds))


def run(
    con, sql: str, raw: bool = False, timeout: float | None = DEFAULT_TIMEOUT, max_rows: int | None = DEFAULT_MAX_ROWS
) -> AdhocResult:
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
    return result(df, types, text, raw, truncated, seconds)


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
