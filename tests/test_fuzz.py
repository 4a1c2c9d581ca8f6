"""Property-based tests: the loader under mutated extracts, parameter parsing under arbitrary input.

The loader either publishes a database that passes basic invariants, or raises LoadError whose every problem
names one of the input files, leaving the live database byte-for-byte as it was and no partial file behind.
Parameter parsing returns the typed value or raises ValueError naming the parameter; nothing else escapes.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from outcomes.catalog import runner
from outcomes.catalog.params import PARAM_TYPES, Param
from outcomes.catalog.query import load_catalog, named_parameters
from outcomes.ingest import contract
from outcomes.ingest.loader import load
from outcomes.ingest.problems import LoadError

ROOT = Path(__file__).resolve().parents[1]
GOOD = ROOT / "tests" / "fixtures" / "headline"
AS_OF = dt.date(2025, 6, 30)
FILES = sorted(p.name for p in GOOD.glob("*.csv"))
NAMES = {f"{t}.{ext}" for t in contract.TABLES for ext in ("csv", "parquet")}


def fuzz(examples: int) -> settings:
    """Bounded runs: a fixed number of examples, no deadline, nothing saved between runs."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A good database built once from the headline fixture; each example works on a copy of it."""
    path = tmp_path_factory.mktemp("fuzz") / "live.duckdb"
    load(GOOD, path, AS_OF)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- mutations of a copy of the headline extracts --------------------------------------------------------


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def flip_bytes(data: bytes, draw) -> bytes:
    buf = bytearray(data)
    if not buf:  # nothing to flip (an earlier mutation emptied the file)
        return data
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(buf) - 1))
        buf[i] ^= draw(st.integers(1, 255))
    return bytes(buf)


def truncate(data: bytes, draw) -> bytes:
    return data[: draw(st.integers(0, len(data)))]


def duplicate_line(data: bytes, draw) -> bytes:
    lines = _lines(data)
    i = draw(st.integers(0, len(lines) - 1))
    lines.insert(draw(st.integers(0, len(lines))), lines[i])
    return b"\n".join(lines)


def shuffle_lines(data: bytes, draw) -> bytes:
    lines = _lines(data)
    keep_header = draw(st.sampled_from([True, True, True, False]))  # mostly data rows, sometimes the header
    head, body = (lines[:1], lines[1:]) if keep_header else ([], lines)
    return b"\n".join(head + draw(st.permutations(body)))


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def _write(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def drop_column(data: bytes, draw) -> bytes:
    rows = _rows(data)
    if not rows or not rows[0]:  # an earlier mutation left a blank first line: no column to drop
        return data
    k = draw(st.integers(0, len(rows[0]) - 1))
    return _write([r[:k] + r[k + 1 :] for r in rows])


FIELD_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "NULL",
            "null",
            "NaN",
            "-1",
            "0",
            "99999999999999999999",
            "2025-02-30",
            "2025-13-01",
            "9999-12-31",
            "0001-01-01",
            "2025-06-30",
            "2026-01-01",
            "true",
            "false",
            "yes",
            "residential",
            "iop",
            "completed",
            "attended",
            "E-SD01-R",
            "SD01",
            "\x00",
            '"',
            "a,b",
            "line\nbreak",
            "=1+1",
            "1e309",
            "１２",
            "😀",
        ]
    ),
    st.integers(-(10**12), 10**12).map(str),
    st.dates(dt.date(1800, 1, 1), dt.date(2100, 12, 31)).map(str),
)


def set_field(data: bytes, draw) -> bytes:
    rows = _rows(data)
    i = draw(st.integers(0, len(rows) - 1))
    if not rows[i]:
        return data
    j = draw(st.integers(0, len(rows[i]) - 1))
    rows[i][j] = draw(FIELD_VALUES)
    return _write(rows)


MUTATIONS = {
    "flip": flip_bytes,
    "truncate": truncate,
    "duplicate": duplicate_line,
    "shuffle": shuffle_lines,
    "drop_column": drop_column,
    "set_field": set_field,
}


@st.composite
def mutated_extracts(draw):
    """[(file, kind)] and the folder contents after applying them, starting from the headline fixture."""
    files = {name: (GOOD / name).read_bytes() for name in FILES}
    applied = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(FILES))
        kind = draw(st.sampled_from(sorted(MUTATIONS)))
        if not files[name] and kind != "truncate":
            continue
        try:
            files[name] = MUTATIONS[kind](files[name], draw)
        except UnicodeDecodeError:  # an earlier byte flip left text the csv module cannot split; flip again
            files[name] = flip_bytes(files[name], draw)
        applied.append((name, kind))
    parquet = draw(st.sampled_from([None] + FILES))
    return applied, files, parquet


def check_published(path: Path) -> None:
    """Basic invariants of a database the loader published."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        (through,) = con.execute("select data_through from load_info").fetchone()
        assert isinstance(through, dt.date)
        for table, rows in con.execute(
            "select table_name, row_count from load_files where row_count is not null"
        ).fetchall():
            assert con.execute(f"select count(*) from {table}").fetchone()[0] == rows
        assert set(contract.TABLES) <= {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        assert (
            con.execute("select count(*) from episodes").fetchone()[0]
            == con.execute("select count(*) from enrollments").fetchone()[0]
        )
        assert con.execute("select count(*) from clients where client_id is null").fetchone()[0] == 0
        assert con.execute("select count(*) - count(distinct client_id) from clients").fetchone()[0] == 0
        catalog = load_catalog()
        for name in ("population", "stepdown_rate", "discharge_outcomes"):
            runner.run(con, catalog[name])
    finally:
        con.close()


@fuzz(50)
@given(mutated_extracts(), st.sampled_from([AS_OF, None]))
def test_loader_loads_or_refuses_cleanly(published, case, as_of):
    applied, files, parquet = case
    with tempfile.TemporaryDirectory() as tmp:
        src, live = Path(tmp) / "src", Path(tmp) / "live.duckdb"
        src.mkdir()
        for name, data in files.items():
            (src / name).write_bytes(data)
        if parquet:  # the same broken file as Parquet, where DuckDB can read it at all
            stem = parquet.removesuffix(".csv")
            try:
                duckdb.execute(
                    f"copy (select * from read_csv('{src / parquet}', all_varchar=true)) "
                    f"to '{src / stem}.parquet' (format parquet)"
                )
                (src / parquet).unlink()
            except duckdb.Error:
                pass
        shutil.copy(published, live)
        before = digest(live)
        try:
            load(src, live, as_of)
        except LoadError as err:
            event("refused: " + ", ".join(sorted({p.rule for p in err.problems}))[:60])
            assert err.problems, "a refusal lists its problems"
            assert all(p.file in NAMES for p in err.problems), [str(p) for p in err.problems]
            assert digest(live) == before, f"a refused load changed the live database ({applied})"
            assert err.report().startswith("load refused")
        else:
            event("loaded")
            check_published(live)
        leftovers = [p.name for p in Path(tmp).iterdir() if p.name.startswith(".")]
        assert not leftovers, f"partial files left behind: {leftovers} ({applied})"


@fuzz(12)
@given(st.sampled_from(FILES), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(published, name, rnd):
    """Shuffled data rows (header kept) load, with the same rows as the original."""
    with tempfile.TemporaryDirectory() as tmp:
        src, live = Path(tmp) / "src", Path(tmp) / "live.duckdb"
        shutil.copytree(GOOD, src)
        lines = (src / name).read_text().splitlines()
        body = lines[1:]
        rnd.shuffle(body)
        (src / name).write_text("\n".join(lines[:1] + body) + "\n")
        load(src, live, AS_OF)
        check_published(live)
        a, b = duckdb.connect(str(published), read_only=True), duckdb.connect(str(live), read_only=True)
        try:
            for table in contract.TABLES:
                q = f"select * from {table} order by all"
                assert a.execute(q).fetchall() == b.execute(q).fetchall()
        finally:
            a.close()
            b.close()


# --- parameter parsing ------------------------------------------------------------------------------------

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=40),
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.datetimes(),
    st.lists(st.one_of(st.text(max_size=10), st.integers(), st.none(), st.floats()), max_size=5),
    st.tuples(st.text(max_size=5), st.integers()),
    st.binary(max_size=10),
    st.decimals(allow_nan=True),
    st.sampled_from(
        [
            "2025-06-30",
            " 2025-06-30 ",
            "2025-6-30",
            "20250630",
            "12",
            " 12 ",
            "1.0",
            "1e3",
            "true",
            "YES",
            "0",
            "a,b,,c",
            ",",
            "  ",
            "",
            "nan",
            "inf",
            "-0",
            "１２",
            "\x00",
            "a" * 5000,
        ]
    ),
)


@fuzz(60)
@given(st.sampled_from(PARAM_TYPES), ANYTHING)
@example("float", 10**400)  # float() of a huge int overflows rather than failing as a ValueError
@example("int", float("inf"))
@example("date", "2025-06-30\x00")
@example("date", dt.datetime(2025, 6, 30, 12, 0))
def test_param_coerce_returns_a_typed_value_or_a_named_value_error(kind, value):
    p = Param("window_days", kind, choices=("7", "14", 30) if kind == "choice" else ())
    try:
        out = p.coerce(value)
    except ValueError as exc:
        assert "window_days" in str(exc)
        assert len(str(exc)) < 200, "the message must not echo a long value"
        return
    if out is None:
        return
    expected = {
        "date": dt.date,
        "int": int,
        "float": float,
        "bool": bool,
        "list": list,
        "choice": str,
        "text": str,
        "dates": list,
    }
    assert isinstance(out, expected[kind]), (kind, value, out)
    if kind == "int":
        assert not isinstance(out, bool)
    if kind == "list":
        assert out and all(isinstance(v, str) and v == v.strip() and v for v in out)
    if kind == "dates":
        assert out and all(type(v) is dt.date for v in out)
    if kind == "choice":
        assert out in ("7", "14", "30")


@fuzz(40)
@given(st.dates())
def test_param_dates_round_trip(day):
    p = Param("start", "date")
    assert p.coerce(day.isoformat()) == day and p.coerce(day) == day


@fuzz(40)
@given(st.integers(-(10**6), 10**6))
def test_param_ints_round_trip(n):
    p = Param("max_day", "int")
    assert p.coerce(str(n)) == n and p.coerce(f" {n} ") == n and p.coerce(float(n)) == n


@fuzz(60)
@given(st.text(max_size=200))
def test_named_parameters_never_raises(text):
    names = named_parameters(text)
    assert all(isinstance(n, str) and n and not n[0].isdigit() for n in names)
    assert len(names) == len(set(names))


PLAIN = st.text(st.sampled_from(list("abcdefghij klmnopqrstuvwxyz0123456789_,.()=<>+;\n\t")), max_size=20)
IDENT = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)


@fuzz(60)
@given(st.lists(st.tuples(PLAIN, IDENT), min_size=1, max_size=6), PLAIN)
def test_named_parameters_finds_tokens_in_plain_text(pieces, tail):
    sql = "".join(f"{text} ${name} " for text, name in pieces) + tail
    expected = list(dict.fromkeys(name for _, name in pieces))
    assert named_parameters(sql) == expected


@fuzz(40)
@given(st.lists(st.tuples(PLAIN, IDENT), min_size=1, max_size=4), st.sampled_from(["'", '"', "--", "/*"]))
def test_named_parameters_skips_strings_and_comments(pieces, wrapper):
    hidden = "".join(f" ${name} " for _, name in pieces)
    quoted = {"'": f"'{hidden}'", '"': f'"{hidden}"', "--": f"--{hidden}\n", "/*": f"/*{hidden}*/"}[wrapper]
    assume("\n" not in hidden)
    assert named_parameters(f"select {quoted} , $shown") == ["shown"]
