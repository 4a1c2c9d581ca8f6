"""Edge cases for catalog.named_parameters: which `$name`s a query uses decides what its header must declare."""

from __future__ import annotations

import duckdb
import pytest

from outcomes.catalog.query import named_parameters

CASES = [
    # (id, sql, expected names in order of first use)
    ("plain", "select $a", ["a"]),
    ("at end of text", "select 1 where x = $last", ["last"]),
    ("repeated names once, first-use order", "select $b, $a, $b, $a", ["b", "a"]),
    ("underscores and digits", "select $window_days, $a_1b", ["window_days", "a_1b"]),
    ("line comment", "select $a -- and $b\nfrom t", ["a"]),
    ("line comment at end, no newline", "select $a -- $b", ["a"]),
    ("block comment", "/* $b */ select $a", ["a"]),
    ("multi-line block comment", "select /* one\n $b\n two */ $a", ["a"]),
    ("nested block comment", "select /* outer /* inner */ still $b */ $a", ["a"]),
    ("unterminated block comment", "select $a /* $b", ["a"]),
    ("string", "select '$b', $a", ["a"]),
    ("doubled quote in string", "select 'it''s $b', $a", ["a"]),
    ("string ending in a backslash", "select 'c:\\', $a", ["a"]),
    ("escape string", "select E'it\\'s $b', $a", ["a"]),
    ("escape string, lower-case e", "select e'\\' $b', $a", ["a"]),
    ("unterminated string", "select $a, 'open $b", ["a"]),
    ("double-quoted identifier", 'select "col $b", $a', ["a"]),
    ("doubled quote in identifier", 'select "we""ird $b", $a', ["a"]),
    ("dollar-quoted string", "select $$ $b $$, $a", ["a"]),
    ("tagged dollar-quoted string", "select $tag$ $b $tag$, $a", ["a"]),
    ("$$ inside a tagged string", "select $tag$ x $$ $b $$ y $tag$, $a", ["a"]),
    ("other tag inside a tagged string", "select $t$ $u$ $b $u$ $t$, $a", ["a"]),
    ("positional", "select $1, $2, $a", ["a"]),
    ("identifier containing $", "select a$b, x$1 from t where y = $c", ["c"]),
    ("keyword then $ name", "select $a from t where b=$b", ["a", "b"]),
    ("cast", "select $x::date, cast($y as int)", ["x", "y"]),
    ("punctuation after", "select ($x), [$y], greatest($z,$w);", ["x", "y", "z", "w"]),
    ("operators after", "select $x+1, $y||'s', $z>=2, $v*2", ["x", "y", "z", "v"]),
    ("named argument", "select * from f(sites := $sites)", ["sites"]),
    ("newline and tab before", "select\n\t$a\n", ["a"]),
    ("unicode identifier", "select naïve, café$x, $a", ["a"]),
    ("escape string with doubled quote", "select E'a''$b', $a", ["a"]),
    ("word ending in e before a string", "select type'$b', $a", ["a"]),
    ("lone dollar", "select 1 $ 2", []),
    ("empty", "", []),
]


@pytest.mark.parametrize("sql, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_named_parameters(sql, expected):
    assert named_parameters(sql) == expected


RUNNABLE = [
    c
    for c in CASES
    if c[0]
    in {
        "plain",
        "repeated names once, first-use order",
        "line comment",
        "block comment",
        "nested block comment",
        "string",
        "doubled quote in string",
        "escape string",
        "double-quoted identifier",
        "dollar-quoted string",
        "tagged dollar-quoted string",
        "$$ inside a tagged string",
        "cast",
        "punctuation after",
        "operators after",
    }
]


@pytest.mark.parametrize("sql, expected", [c[1:] for c in RUNNABLE], ids=[c[0] for c in RUNNABLE])
def test_duckdb_agrees(sql, expected):
    """DuckDB binds exactly the names found: one more or one fewer would fail to run."""
    sql = sql.replace('"col $b"', '1 as "col $b"').replace('"we""ird $b"', '1 as "we""ird $b"')
    values = {name: 1 for name in expected}
    con = duckdb.connect()
    try:
        con.execute(sql.replace("::date", "::int").replace("from t", ""), values)
    finally:
        con.close()
