"""Ad-hoc SQL (outcomes.catalog.adhoc, `python -m outcomes sql`) and the Explore page that offers it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from cli_tools import run as cli
from streamlit.testing.v1 import AppTest

from outcomes.catalog import adhoc, runner, scaffold
from outcomes.catalog.query import CatalogError, parse
from outcomes.present import files as output

ROOT = Path(__file__).resolve().parents[1]
RUNAWAY = "select count(*) from range(10000000000) a, range(1000) b"

REFUSED = {
    "two statements": "select 1; select 2",
    "copy to file": "COPY (select 1) TO '/tmp/x.csv'",
    "attach": "ATTACH '/tmp/other.duckdb' AS other",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "set": "SET threads=1",
    "pragma": "PRAGMA enable_profiling",
    "create table": "CREATE TABLE t (a int)",
    "insert": "INSERT INTO episodes SELECT * FROM episodes",
    "drop": "DROP TABLE episodes",
    "update": "UPDATE episodes SET site = 'x'",
    "delete": "DELETE FROM episodes",
    "export": "EXPORT DATABASE '/tmp/out'",
    "call": "CALL pragma_version()",
    "explain": "EXPLAIN select 1",
    "empty": "  -- nothing\n",
}

FAILS = {  # read-only by statement type, stopped by the hardened connection
    "read_csv": ("select * from read_csv('/etc/passwd')", "file and network access is switched off"),
    "read_text": ("select * from read_text('/etc/passwd')", "file and network access is switched off"),
    "glob": ("select * from glob('/etc/*')", "file and network access is switched off"),
    "remote parquet": (
        "select * from read_parquet('https://example.com/x.parquet')",
        "file and network access is switched off",
    ),
    "parameter": ("select $x", "takes no $parameters"),
    "unknown table": ("select * from nosuch", "nosuch"),
    "syntax": ("selec 1", "syntax error"),
}


class Untouchable:
    """Stands in for a connection that must not be used: refusal happens before anything runs."""

    def __getattr__(self, name):
        raise AssertionError(f"the connection was used ({name}) for SQL that should have been refused")


# ---------------------------------------------------------------------------------------------------------------
# What may run
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sql", list(REFUSED.values()), ids=list(REFUSED))
def test_refused_before_running(sql):
    with pytest.raises(adhoc.Refused) as exc:
        adhoc.run(Untouchable(), sql)
    assert "\n" not in str(exc.value) and str(exc.value)


def test_refusal_says_why():
    with pytest.raises(adhoc.Refused, match="2 statements"):
        adhoc.statement("select 1; select 2")
    with pytest.raises(adhoc.Refused, match="COPY"):
        adhoc.statement("copy (select 1) to '/tmp/x.csv'")
    with pytest.raises(adhoc.Refused, match="extensions"):
        adhoc.statement("install httpfs")


@pytest.mark.parametrize("sql, message", list(FAILS.values()), ids=list(FAILS))
def test_hardened_connection_stops_the_rest(demo_db, sql, message):
    with pytest.raises(adhoc.QueryFailed) as exc:
        adhoc.run(demo_db, sql)
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "sql",
    [
        "select 42 as answer",
        "select 42 as answer;",
        "with a as (select 42 as answer) select * from a",
        "from (select 42 as answer)",
        "values (42)",
        "describe episodes",
        "show tables",
        "summarize filter_options",
        "-- a comment first\nselect 42 as answer",
    ],
    ids=["select", "trailing semicolon", "with", "from first", "values", "describe", "show", "summarize", "comment"],
)
def test_read_only_forms_run(demo_db, sql):
    result = adhoc.run(demo_db, sql)
    assert not result.data.empty


def test_the_database_is_unchanged(demo_db):
    before = adhoc.run(demo_db, "select count(*) as n from episodes", raw=True).data
    for sql in REFUSED.values():
        with pytest.raises(adhoc.Refused):
            adhoc.run(demo_db, sql)
    assert adhoc.run(demo_db, "select count(*) as n from episodes", raw=True).data.equals(before)


# ---------------------------------------------------------------------------------------------------------------
# Time limit and row cap
# ---------------------------------------------------------------------------------------------------------------


def test_runaway_query_is_stopped(demo_db):
    with pytest.raises(runner.QueryTimeout):
        adhoc.run(demo_db, RUNAWAY, timeout=1)
    assert adhoc.run(demo_db, "select 1 as x").data.shape == (1, 1)  # the connection still works


def test_rows_are_capped(demo_db):
    capped = adhoc.run(demo_db, "select * from range(25) t(i)", max_rows=10, raw=True)
    assert capped.truncated and len(capped.data) == 10
    exact = adhoc.run(demo_db, "select * from range(25) t(i)", max_rows=25, raw=True)
    assert not exact.truncated and len(exact.data) == 25
    default = adhoc.run(demo_db, "select * from range(10001) t(i)", raw=True)
    assert default.truncated and len(default.data) == adhoc.DEFAULT_MAX_ROWS == 10_000


# ---------------------------------------------------------------------------------------------------------------
# Conservative suppression
# ---------------------------------------------------------------------------------------------------------------

TABLE = """
select * from (values
    ('a', 5, 0.5, 2.25::decimal(5, 2), true, [1, 2], 'x'),
    ('b', 50, 0.25, 7.50::decimal(5, 2), false, [30], 'y'),
    ('c', 0, 1.5, 11.00::decimal(5, 2), null, [40], 'z'),
    ('d', null, 0.75, null, true, null, '5')
) as t(k, n, share, amount, flag, items, label)
"""


def test_small_counts_and_their_rows_are_hidden(demo_db):
    result = adhoc.run(demo_db, TABLE)
    df, mask = result.data.set_index("k"), result.mask.set_axis(result.data["k"])
    assert result.counts == ["n"]
    assert pd.isna(df.loc["a", "n"]) and df.loc["b", "n"] == 50 and df.loc["c", "n"] == 0
    # every non-integer number on a row with a small count is hidden too
    assert pd.isna(df.loc["a", "share"]) and pd.isna(df.loc["a", "amount"])
    assert df.loc["b", "share"] == 0.25 and df.loc["b", "amount"] == 7.5 and df.loc["c", "share"] == 1.5
    # text and booleans stay, but not a count written as text; nested numbers are hidden on every row
    assert list(df["label"]) == ["x", "y", "z", None] and df.loc["a", "flag"] == True  # noqa: E712
    assert mask["items"].tolist() == [True, True, True, False]  # a null hides nothing
    assert mask.loc["a"].tolist() == [False, True, True, True, False, True, False]


def test_raw_shows_everything(demo_db):
    result = adhoc.run(demo_db, TABLE, raw=True)
    assert not result.mask.to_numpy().any()
    assert result.data["n"].tolist()[:3] == [5, 50, 0]


@pytest.mark.parametrize(
    "expr",
    [
        "count(*)",
        "sum(1)",
        "count(*)::int",
        "count(*)::hugeint",
        "count(*)::decimal(18, 0)",
        "count(*)::utinyint",
    ],
    ids=["count", "sum hugeint", "int", "hugeint", "decimal scale 0", "unsigned"],
)
def test_every_integer_type_is_a_count(demo_db, expr):
    sql = f"select 'x' as k, {expr} as n, avg(i / 2) as mean from range(7) t(i)"
    result = adhoc.run(demo_db, sql)
    raw = adhoc.run(demo_db, sql, raw=True)
    assert result.counts == ["n"]
    assert raw.data["n"].iloc[0] == 7 and raw.data["mean"].iloc[0] == 1.5
    assert pd.isna(result.data["n"].iloc[0]) and pd.isna(result.data["mean"].iloc[0])


def test_suppress_unknown_on_a_dataframe():
    df = pd.DataFrame({"site": ["A", "B", "C"], "clients": [3, 30, 0], "mean_age": [41.5, 38.0, 0.0]})
    out, mask = adhoc.suppress_unknown(df)
    assert out["clients"].isna().tolist() == [True, False, False]
    assert out["mean_age"].isna().tolist() == [True, False, False]
    assert out["site"].tolist() == ["A", "B", "C"] and not mask["site"].any()


def test_exports_hold_suppressed_data_only(demo_db):
    result = adhoc.run(demo_db, TABLE)
    text = output.to_csv(result.data)
    assert "a,,," in text and ",5," not in text.split("\n")[1]
    back = pd.read_parquet(__import__("io").BytesIO(output.to_parquet(result.data)))
    assert pd.isna(back.loc[0, "n"]) and pd.isna(back.loc[0, "share"])
    sheet = pd.read_excel(__import__("io").BytesIO(output.to_excel(result.data)))
    assert pd.isna(sheet.loc[0, "n"])


def test_duplicate_column_names_are_kept_apart(demo_db):
    result = adhoc.run(demo_db, "select 5 as n, 'x' as n")
    assert list(result.data.columns) == ["n", "n_2"] and result.counts == ["n"]
    assert pd.isna(result.data.loc[0, "n"]) and result.data.loc[0, "n_2"] == "x"


# ---------------------------------------------------------------------------------------------------------------
# Save as query
# ---------------------------------------------------------------------------------------------------------------


def test_save_as_query_gives_a_catalog_file(demo_db, tmp_path):
    sql = "select filter, count(*) as n_values from filter_options group by all order by filter"
    result = adhoc.run(demo_db, sql)
    text = scaffold.from_statement(result.sql, "option_counts", result.counts)
    path = tmp_path / "option_counts.sql"
    path.write_text(text)
    query = parse(path)
    assert query.suppress["counts"] == ["n_values"] and "TODO" in query.title
    assert runner.run(demo_db, query).data.shape[0] > 0


def test_save_as_query_lists_what_to_fill_in(tmp_path):
    text = scaffold.from_statement(
        "select site, count(*) as n, avg(1.0) as mean from episodes group by all", "per_site", ["n"], ["mean"]
    )
    assert "TODO give each of these a role" in text and "mean" in text and "select * from final" in text
    path = tmp_path / "per_site.sql"
    path.write_text(text)
    with pytest.raises(CatalogError, match="per_site.sql"):
        parse(path)  # it reads episodes without the sites filter: the analyst has to finish it


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [v for k, v in REFUSED.items() if k != "empty"] + [v[0] for v in FAILS.values()],
    ids=[k for k in REFUSED if k != "empty"] + list(FAILS),
)
def test_cli_refuses_with_one_line(demo_db_path, sql):
    result = cli("sql", sql, "--db", str(demo_db_path))
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr


def test_cli_refuses_before_opening_the_database(tmp_path):
    result = cli("sql", "DROP TABLE episodes", "--db", str(tmp_path / "missing.duckdb"))
    assert result.returncode != 0 and "DROP" in result.stderr


def test_cli_suppresses_unless_raw(demo_db_path):
    sql = "select 'a' as k, 5 as n, 0.5 as share union all select 'b', 50, 0.25 order by k"
    shown = cli("sql", sql, "--db", str(demo_db_path), "--format", "csv")
    assert shown.returncode == 0 and shown.stdout.splitlines() == ["k,n,share", "a,,", "b,50,0.25"]
    table = cli("sql", sql, "--db", str(demo_db_path))
    assert "1–10" in table.stdout and "too few" in table.stdout  # the count, and the share beside it
    raw = cli("sql", sql, "--db", str(demo_db_path), "--format", "csv", "--raw")
    assert raw.stdout.splitlines() == ["k,n,share", "a,5,0.5", "b,50,0.25"]
    js = cli("sql", sql, "--db", str(demo_db_path), "--format", "json")
    assert '"n":null' in js.stdout.replace(" ", "")


def test_cli_timeout_and_row_cap(demo_db_path):
    slow = cli("sql", RUNAWAY, "--db", str(demo_db_path), "--timeout", "1")
    assert slow.returncode != 0 and "stopped" in slow.stderr and len(slow.stderr.splitlines()) == 1
    capped = cli(
        "sql",
        "select i::varchar as i from range(30) t(i)",
        "--db",
        str(demo_db_path),
        "--max-rows",
        "5",
        "--format",
        "csv",
    )
    assert capped.returncode == 0 and len(capped.stdout.splitlines()) == 6 and "truncated" in capped.stderr


def test_cli_reads_stdin(demo_db_path):
    result = cli("sql", "-", "--db", str(demo_db_path), "--format", "csv", stdin="select 'ok' as status\n")
    assert result.returncode == 0 and result.stdout.splitlines() == ["status", "ok"]


# ---------------------------------------------------------------------------------------------------------------
# The Explore page
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def explore(demo_db_path, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    st.cache_data.clear()
    st.cache_resource.clear()

    def open_page(**query_params) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        for k, v in query_params.items():
            at.query_params[k] = v
        at.switch_page("pages/explore.py")
        return at.run()

    return open_page


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_explore_lists_the_catalog_by_area(explore):
    at = explore()
    _ok(at)
    assert at.title[0].value == "Explore"
    assert at.selectbox(key="q").value is None
    markdown = " ".join(m.value for m in at.markdown)
    for area in ("**Step-down**", "**Engagement**"):
        assert area in markdown


def test_explore_query_from_the_url(explore):
    at = explore(q="stepdown_rate")
    _ok(at)
    assert at.selectbox(key="q").value == "stepdown_rate"
    assert at.get("plotly_chart"), "the query's chart"
    table = at.dataframe[0].value
    assert list(table.columns) == ["month", "eligible_discharges", "stepped_down", "stepdown_rate", "ci_low", "ci_high"]
    assert at.code and "filtered(" in at.code[0].value
    assert [b.proto.label for b in at.get("download_button")][:3] == [
        "Download CSV",
        "Download Excel",
        "Download Parquet",
    ]
    keys = {w.key for w in list(at.number_input) + list(at.date_input)}
    assert {"stepdown_rate.window_days", "stepdown_rate.as_of"} <= keys
    assert "stepdown_rate.sites" not in keys and "stepdown_rate.start" not in keys  # the sidebar supplies those

    before = table["stepped_down"].tolist()
    at.number_input(key="stepdown_rate.window_days").set_value(30).run()
    _ok(at)
    after = at.dataframe[0].value
    assert after["stepped_down"].tolist() != before and at.get("plotly_chart")


def test_explore_widget_per_parameter_type(explore, tmp_path, monkeypatch):
    from outcomes.paths import QUERY_DIR
    from outcomes.web import database

    for path in QUERY_DIR.glob("*.sql"):  # the real catalog, plus the scaffold's every-type example
        shutil.copy(path, tmp_path)
    scaffold.new("discharges_by_month", tmp_path)
    monkeypatch.setattr(database, "QUERY_DIR", tmp_path)
    at = explore(q="discharges_by_month")
    _ok(at)
    key = "discharges_by_month.{}".format
    assert at.date_input(key=key("as_of")).value is not None  # default: the data-through date
    assert at.number_input(key=key("min_days")).value == 0  # int
    assert at.number_input(key=key("max_years")).value == 10.0  # float
    assert at.selectbox(key=key("reason")).value == "completed"  # choice
    assert at.selectbox(key=key("include_transfers")).value == "yes"  # bool: any / yes / no
    assert at.selectbox(key=key("include_transfers")).options == ["any", "yes", "no"]
    assert at.text_input(key=key("payer_contains")).value == ""  # text
    levels = at.multiselect(key=key("levels"))  # list, options from filter_options
    assert set(levels.options) == {"withdrawal_management", "residential", "php", "iop", "op"}
    assert not any(
        w.key in (key("sites"), key("start"), key("end")) for w in list(at.multiselect) + list(at.date_input)
    )
    total = at.dataframe[0].value["discharges"]

    levels.set_value(["iop"])
    at.selectbox(key=key("include_transfers")).set_value("no")
    at.selectbox(key=key("reason")).set_value("left_against_advice")
    at.text_input(key=key("payer_contains")).input("medic")
    at.number_input(key=key("max_years")).set_value(0.5)
    at.run()
    _ok(at)
    narrowed = at.dataframe[0].value["discharges"]
    assert not narrowed.equals(total)


def test_explore_url_seeds_widgets(explore):
    at = explore(**{"q": "stepdown_rate", "stepdown_rate.window_days": "7"})
    _ok(at)
    assert at.number_input(key="stepdown_rate.window_days").value == 7


def test_explore_adhoc_sql(explore):
    at = explore()
    at.text_area(key="adhoc_sql").input(
        "select site, count(*) as episodes, count(*) filter (where episode_id = 'E00000001') as first_one "
        "from episodes group by all order by site"
    ).run()
    _ok(at)
    shown = at.dataframe[-1].value
    assert list(shown.columns) == ["site", "episodes", "first_one"]
    assert "1–10" in shown["first_one"].tolist()  # the site with that episode: 1 is hidden
    labels = [b.proto.label for b in at.get("download_button")]
    assert {"Download CSV", "Download Excel", "Download Parquet", "Save as query"} <= set(labels)

    at.text_area(key="adhoc_sql").input("COPY (select 1) TO '/tmp/x.csv'").run()
    assert at.error and "COPY" in at.error[0].value
    at.text_area(key="adhoc_sql").input("select * from read_csv('/etc/passwd')").run()
    assert at.error and "switched off" in at.error[0].value
    at.text_area(key="adhoc_sql").input("select * from range(10001) t(i)").run()
    assert any("Truncated" in w.value for w in at.warning)
