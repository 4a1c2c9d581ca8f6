"""SQL fuzz through the ad-hoc SQL workers: generated statements mixing allowed and forbidden forms.

Over 2,000 statements (two runs of hypothesis, about 10 s) go through a warm pool of real workers. The oracle:
- no call raises anything but the sandbox's own errors, and every call returns within its limit + 2 s;
- a statement built with any forbidden part (a write, a setting, an extension, a file or network read, a
  second statement, however it is cased, commented or hidden) never returns rows;
- a statement built from allowed parts only returns rows;
- the database file and the folder a forbidden statement names are unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outcomes.catalog import adhoc, sandbox

TIMEOUT = 2.0
EXAMPLES = 1100  # per test; two tests: 2,200 statements

ALLOWED = [
    "select 42 as answer",
    "select count(*) as n from episodes",
    "select site{c}, count(*) as n from episodes group by all order by all",
    "from filter_options limit 3",
    "values (1, 'a'), (2, 'b')",
    "with a as (select 1 as x) select x{c} from a",
    "describe episodes",
    "show tables",
    "select 'COPY x TO y; DROP TABLE episodes' as text",
    "select 1 as x -- ; drop table episodes\n",
    "select current_setting('memory_limit') as m",
    "select * from duckdb_settings() where name = 'threads'",
    "select list(level_of_care{c}) as levels from (select distinct level_of_care from episodes)",
    "select {c}avg(length(site)) as mean from episodes",
]
FORBIDDEN = [
    "copy (select 1) to '{dir}/out.csv'",
    "copy episodes to '{dir}/episodes.parquet' (format parquet)",
    "copy episodes from '{dir}/in.csv'",
    "attach '{dir}/other.duckdb' as other",
    "attach ':memory:' as m",
    "detach database if exists other",
    "install httpfs",
    "force install httpfs",
    "load httpfs",
    "load '{dir}/evil.duckdb_extension'",
    "set threads = 8",
    "set memory_limit = '20GB'",
    "set enable_external_access = true",
    "set global lock_configuration = false",
    "reset memory_limit",
    "pragma enable_profiling",
    "pragma threads = 4",
    "create table t as select 1 as x",
    "create temp table t (x int)",
    "create view v as select 1",
    "create macro m(x) as x + 1",
    "create secret s (type s3, key_id 'k', secret 's')",
    "create sequence s",
    "insert into episodes select * from episodes limit 1",
    "update episodes set site = 'x'",
    "delete from episodes",
    "drop table episodes",
    "alter table episodes add column z int",
    "export database '{dir}/export'",
    "import database '{dir}/export'",
    "call pragma_version()",
    "checkpoint",
    "vacuum",
    "use memory",
    "begin transaction",
    "explain select 1",
    "pivot episodes on site using count(*)",
    "select * from read_csv('/etc/passwd')",
    "select * from read_csv_auto('{dir}/x.csv')",
    "select * from read_parquet('{dir}/x.parquet')",
    "select * from read_json('{dir}/x.json')",
    "select * from read_text('/etc/hostname')",
    "select * from read_blob('/etc/hostname')",
    "select * from glob('/etc/*')",
    "select * from glob('{dir}/*')",
    "select * from sniff_csv('/etc/passwd')",
    "select * from read_parquet('https://example.com/x.parquet')",
    "select * from '/etc/passwd'",
    "from '{dir}/x.csv'",
    "select * from parquet_metadata('{dir}/x.parquet')",
]
COMMENTS = ["", " ", "/* x */", "/* ; drop table episodes */", "--c\n", "\n", "\t"]


def _case(text: str, flips: list[bool]) -> str:
    # change the case of letters outside quotes only
    out, quoted = [], False
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        out.append(ch.swapcase() if not quoted and ch.isalpha() and flips[i % len(flips)] else ch)
    return "".join(out)


@st.composite
def statements(draw, tmp: str):
    """(sql, forbidden) built from templates: one or more parts, comments around them, random case."""
    parts = []
    for _ in range(draw(st.integers(1, 3)) if draw(st.booleans()) else 1):
        forbidden = draw(st.booleans())
        template = draw(st.sampled_from(FORBIDDEN if forbidden else ALLOWED))
        text = template.format(dir=tmp, c=draw(st.sampled_from(COMMENTS[:3])))
        if draw(st.booleans()):
            text = _case(text, draw(st.lists(st.booleans(), min_size=1, max_size=5)))
        parts.append((text, forbidden))
    lead, tail = draw(st.sampled_from(COMMENTS)), draw(st.sampled_from(["", ";", " ; ", ";\n-- end"]))
    glue = draw(st.sampled_from(["; ", ";", ";\n", ";/* */", "; -- x\n"]))
    sql = lead + glue.join(p for p, _ in parts) + tail
    forbidden = len(parts) > 1 or any(f for _, f in parts)
    return sql, forbidden


@pytest.fixture(scope="module")
def pool():
    p = sandbox.Pool(2)
    assert p.wait_warm(120)
    yield p
    p.close()


@pytest.fixture(scope="module")
def db_before(demo_db_path) -> str:
    """The database file's SHA-256 before any statement of this module ran."""
    return digest(demo_db_path)


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Path:
    """A folder the forbidden statements name; it must stay empty."""
    return tmp_path_factory.mktemp("fuzz-target")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def check(pool, db: Path, target: Path, sql: str, forbidden: bool) -> None:
    started = time.monotonic()
    try:
        result = pool.run(sql, db, timeout=TIMEOUT, max_rows=50)
    except (adhoc.Refused, adhoc.QueryFailed, sandbox.Stopped) as exc:
        assert "\n" not in str(exc), (sql, exc)
        outcome = None
    else:
        outcome = result
    seconds = time.monotonic() - started
    assert seconds < TIMEOUT + 2, (sql, seconds)
    if forbidden:
        assert outcome is None, f"a forbidden statement returned rows: {sql!r}"
    else:
        assert outcome is not None, f"an allowed statement failed: {sql!r}"
    assert not any(target.iterdir()), f"{sql!r} wrote into {target}"


@fuzz(EXAMPLES)
@given(data=st.data())
def test_fuzz_mixed_statements(pool, demo_db_path, db_before, target, data):
    sql, forbidden = data.draw(statements(str(target)))
    check(pool, demo_db_path, target, sql, forbidden)


@fuzz(EXAMPLES)
@given(prefix=st.text(max_size=30), body=st.sampled_from(ALLOWED + FORBIDDEN), suffix=st.text(max_size=30))
def test_fuzz_noise_around_statements(pool, demo_db_path, db_before, target, prefix, body, suffix):
    """Arbitrary text around a statement: whatever it parses as, nothing forbidden runs, nothing escapes."""
    sql = prefix + body.format(dir=target, c="") + suffix
    started = time.monotonic()
    try:
        result = pool.run(sql, demo_db_path, timeout=TIMEOUT, max_rows=50)
    except (adhoc.Refused, adhoc.QueryFailed, sandbox.Stopped):
        result = None
    assert time.monotonic() - started < TIMEOUT + 2
    if result is not None and body in FORBIDDEN:  # the noise made it text (a string or comment), nothing more
        assert not result.data.astype(str).apply(lambda c: c.str.contains("root:")).to_numpy().any(), sql
    assert not any(target.iterdir()), f"{sql!r} wrote into {target}"


def test_nothing_changed_after_fuzzing(pool, demo_db_path, db_before, target):
    """Runs after the fuzz tests in this module (pytest keeps file order): the database file is as it was and
    every worker still has its limits."""
    check(pool, demo_db_path, target, "drop table episodes", True)
    assert digest(demo_db_path) == db_before
    for _ in range(pool.size):
        got = pool.run(
            "select current_setting('threads') as t, current_setting('enable_external_access') as e",
            demo_db_path,
            raw=True,
        ).data
        assert str(got["t"].iloc[0]) == "1" and str(got["e"].iloc[0]).lower() == "false"
