"""The load-time tables built on Spark from queries/_build equal the DuckDB-built ones, and so do all queries.

One SparkSession (local[2]) for the module. Every fixture folder, the edge fixture of test_summaries.py and a
20,000-client demo are built both ways: by the DuckDB loader, and on Spark then published with
`load --prebuilt`. The fixtures go through the partitioned lake layout, the demo through a flat folder.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from outcomes.catalog import runner
from outcomes.catalog.query import load_catalog
from outcomes.cli import main
from outcomes.ingest import contract, db, lake, prebuilt
from outcomes.ingest.demo import generate
from outcomes.ingest.loader import load
from outcomes.ingest.problems import LoadError
from outcomes.scale import spark_build, spark_sql

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
FOLDERS = sorted(p.name for p in FIXTURES.iterdir() if (p / "clients.csv").exists())
DATASETS = FOLDERS + ["edge", "demo"]
BUILT_TABLES = [s.table for s in prebuilt.statements() if s.table]


@pytest.fixture(scope="module")
def spark():
    # tiny tables: one shuffle partition each, and no progress bars in the test output
    session = spark_build.session(
        "local[2]", {"spark.sql.shuffle.partitions": "1", "spark.ui.showConsoleProgress": "false"}
    )
    yield session
    session.stop()


def _edge_folder(folder: Path) -> Path:
    from test_summaries import EDGE_ROWS  # the edge cases the demo never makes

    shutil.copytree(FIXTURES / "headline", folder)
    for name, lines in EDGE_ROWS.items():
        text = (folder / name).read_text()
        (folder / name).write_text(text + ("" if text.endswith("\n") else "\n") + "\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    """dataset -> (DuckDB-built database, Spark-built and published database, source, build folder)."""
    work = tmp_path_factory.mktemp("spark")
    sources = {}
    for name in FOLDERS:
        sources[name] = (FIXTURES / name, work / f"{name}-lake")
    sources["edge"] = (_edge_folder(work / "edge-csv"), work / "edge-lake")
    generate(work / "demo", clients=20_000, seed=11)
    sources["demo"] = (work / "demo", work / "demo")  # flat Parquet: read as it is by both
    for folder, source in sources.values():
        if source != folder:
            lake.write(folder, source)

    def one(name):
        folder, source = sources[name]
        duck = work / f"{name}-duckdb.duckdb"
        load(folder, duck)
        out = work / f"{name}-built"
        spark_build.build(source, out, spark=spark.newSession())
        published = work / f"{name}-spark.duckdb"
        load(source, published, prebuilt=out)
        return name, (duck, published, source, out)

    with ThreadPoolExecutor(3) as pool:  # Spark runs small jobs of three builds at once in one JVM
        return dict(pool.map(one, DATASETS))


def _columns(con, database: str, table: str) -> list[tuple]:
    return con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = $d and "
        "table_name = $t order by column_index",
        {"d": database, "t": table},
    ).fetchall()


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_load_time_table_equals_the_duckdb_build(built, dataset):
    duck, published, _, _ = built[dataset]
    con = duckdb.connect()
    con.execute(f"attach '{duck}' as d (read_only)")
    con.execute(f"attach '{published}' as s (read_only)")
    names = lambda d: {
        r[0]
        for r in con.execute("select table_name from duckdb_tables() where database_name = $d", {"d": d}).fetchall()
    }
    assert names("d") == names("s")
    macros = lambda d: {
        r[0]
        for r in con.execute(
            "select function_name from duckdb_functions() where database_name = $d and function_type in ('macro', 'table_macro')",
            {"d": d},
        ).fetchall()
    }
    assert macros("d") == macros("s") and {"filtered", "wilson_low", "wilson_high"} <= macros("s")
    for table in BUILT_TABLES + list(contract.TABLES):
        assert _columns(con, "d", table) == _columns(con, "s", table), f"{table}: types differ"
        count = con.execute(f"select count(*) from d.{table}").fetchone()[0]
        assert count == con.execute(f"select count(*) from s.{table}").fetchone()[0], table
        for x, y in (("d", "s"), ("s", "d")):
            extra = con.execute(
                f"select count(*) from (select * from {x}.{table} except all select * from {y}.{table})"
            ).fetchone()[0]
            assert extra == 0, f"{dataset} {table}: {extra} rows built by {'DuckDB' if x == 'd' else 'Spark'} only"
    assert con.execute("select count(*) from d.iop_sessions").fetchone()[0] > 0


_NORMAL = {
    "TINYINT": "integer",
    "SMALLINT": "integer",
    "INTEGER": "integer",
    "BIGINT": "integer",
    "HUGEINT": "integer",
    "VARCHAR": "text",
    "DATE": "date",
    "BOOLEAN": "boolean",
    "DOUBLE": "float",
    "FLOAT": "float",
}


def _normal(duckdb_type: str) -> str:
    return "text" if duckdb_type.startswith("ENUM(") else _NORMAL.get(duckdb_type, duckdb_type)


def test_spark_writes_every_table_with_the_duckdb_types_after_normalising(built):
    duck, _, _, out = built["demo"]
    con = duckdb.connect(str(duck), read_only=True)
    for table in BUILT_TABLES:
        mine = [
            (c, _normal(t))
            for c, t in con.execute(
                f"select column_name, data_type from duckdb_columns() where table_name = '{table}' order by column_index"
            ).fetchall()
        ]
        files = sorted((out / table).glob("*.parquet"))
        theirs = [
            (c, _normal(t))
            for c, t, *_ in con.execute(f"describe select * from read_parquet({[str(f) for f in files]})").fetchall()
        ]
        assert theirs == mine, table
    con.close()


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_catalog_query_gives_the_same_rows(built, dataset):
    duck, published, _, _ = built[dataset]
    a, b = db.connect(duck), db.connect(published)
    try:
        site = a.execute("select min(value) from filter_options where filter = 'site'").fetchone()[0]
        for query in load_catalog().values():
            for given in ({}, {"sites": [site]} if "sites" in query.params else None):
                if given is None:
                    continue
                x = runner.run(a, query, given, raw=True).data
                y = runner.run(b, query, given, raw=True).data
                pd.testing.assert_frame_equal(x, y, obj=f"{dataset} {query.name} {given}")
    finally:
        a.close()
        b.close()


def test_published_tables_keep_the_order_their_query_sorts_by(built):
    _, published, _, _ = built["demo"]
    con = db.connect(published)
    out_of_order = con.execute(
        "select count(*) from (select session_date < lag(session_date) over (order by rowid) "
        "as back from iop_sessions) where back"
    ).fetchone()[0]
    con.close()
    assert out_of_order == 0


def test_a_build_of_other_data_or_other_sql_is_refused(built, tmp_path):
    _, _, source, out = built["headline"]
    other = tmp_path / "other"
    shutil.copytree(out, other)
    manifest = json.loads((other / prebuilt.MANIFEST).read_text())
    (other / prebuilt.MANIFEST).write_text(json.dumps(manifest | {"build_hash": "0" * 64}))
    with pytest.raises(LoadError) as err:
        load(source, tmp_path / "x.duckdb", prebuilt=other)
    assert [p.rule for p in err.value.problems] == ["prebuilt"] and "queries/_build" in err.value.problems[0].message
    (other / prebuilt.MANIFEST).write_text(
        json.dumps(manifest | {"sources": manifest["sources"] | {"clients": "0" * 64}})
    )
    with pytest.raises(LoadError) as err:
        load(source, tmp_path / "x.duckdb", prebuilt=other)
    assert "different clients" in err.value.report()
    (other / prebuilt.MANIFEST).unlink()
    with pytest.raises(LoadError) as err:
        load(source, tmp_path / "x.duckdb", prebuilt=other)
    assert "not a finished build" in err.value.report()
    assert not (tmp_path / "x.duckdb").exists()


def test_cli_builds_and_publishes(spark, built, tmp_path, capsys):
    _, _, source, _ = built["measures_iop"]
    assert main(["build", "--engine", "spark", "--source", str(source), "--out", str(tmp_path / "b")]) == 0
    assert (
        main(["load", str(source), "--prebuilt", str(tmp_path / "b"), "--db", str(tmp_path / "x.duckdb"), "--quiet"])
        == 0
    )
    assert "loaded" in capsys.readouterr().out
    assert spark.sparkContext._jsc is not None, "the build stopped a session it did not start"


# ---- the rewrites, each run on Spark against DuckDB's answer ------------------------------------------------

ROWS = [  # g, x, y, d1, d2, k
    (1, 10, 3, "2025-03-05", "2025-03-01", 7),
    (1, 20, 1, "2025-03-10", "2025-02-27", 7),
    (1, None, 2, "2025-03-12", "2025-03-12", 8),
    (2, 5, None, "2024-12-30", "2025-01-06", 9),
    (2, 7, 4, "2025-01-01", "2024-12-31", 9),
    (2, 9, 0, "2025-02-28", "2025-01-31", 10),
]
SCHEMA = {"t": {"g": "INTEGER", "x": "INTEGER", "y": "INTEGER", "d1": "DATE", "d2": "DATE", "k": "INTEGER"}}
CASES = {  # name -> (DuckDB SQL, whether list values come in no defined order)
    "ordered list, nulls kept": ("select g, list(x order by y) as v from t group by g", False),
    "ordered list, descending": ("select g, list(x order by y desc) as v from t group by g", False),
    "list keeps nulls": ("select g, list(x) as v from t group by g", True),
    "list_reduce with a lambda": (
        "select g, list_reduce(list(x order by y), lambda a, b: a + b) as v from t where x is not null group by g",
        False,
    ),
    "lambda in list_transform": (
        "select g, list_transform(list(x order by y), lambda e: e * 2) as v from t group by g",
        False,
    ),
    "bitstring_agg distinct count": ("select g, bit_count(bitstring_agg(k)) as v from t group by g", False),
    "quantile_cont": ("select g, quantile_cont(x, 0.25) as v from t group by g", False),
    "date minus date": ("select g, d1 - d2 as v, (d1 - d2) // 7 as w from t", False),
    "date plus days, filtered count": (
        "select g, count(*) filter (where d1 + 3 > d2 + 30) as v from t group by g",
        False,
    ),
    "week and month": ("select date_trunc('week', d1)::date as w, date_trunc('month', d1)::date as m from t", False),
}


def _rows(frame: pd.DataFrame, unordered: bool) -> list:
    def plain(v):
        if isinstance(v, (list, tuple)) or hasattr(v, "tolist"):
            items = [plain(x) for x in (v.tolist() if hasattr(v, "tolist") else v)]
            return tuple(sorted(items, key=lambda e: (e is None, e)) if unordered else items)
        if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
            return None
        if isinstance(v, (pd.Timestamp, dt.datetime)):
            return v.date()
        return v.item() if hasattr(v, "item") else v

    return sorted((tuple(plain(v) for v in row) for row in frame.itertuples(index=False)), key=repr)


@pytest.mark.parametrize("case", CASES)
def test_rewrite_gives_duckdbs_answer_on_spark(spark, case):
    sql, unordered = CASES[case]
    con = duckdb.connect()
    values = ", ".join(
        f"({g}, {'null' if x is None else x}, {'null' if y is None else y}, date '{a}', date '{b}', {k})"
        for g, x, y, a, b, k in ROWS
    )
    con.execute(f"create table t as select * from (values {values}) as v(g, x, y, d1, d2, k)")
    expected = con.execute(sql).df()
    con.close()
    spark.createDataFrame(
        [(g, x, y, dt.date.fromisoformat(a), dt.date.fromisoformat(b), k) for g, x, y, a, b, k in ROWS],
        "g int, x int, y int, d1 date, d2 date, k int",
    ).createOrReplaceTempView("t")
    translated = spark_sql.to_spark(sql, SCHEMA)
    assert _rows(spark.sql(translated).toPandas(), unordered) == _rows(expected, unordered), translated


# ---- what must not carry over silently -------------------------------------------------------------------------


def test_every_build_statement_transpiles():
    steps = spark_sql.steps()
    assert [s.statement.table for s in steps if s.spark] == BUILT_TABLES
    assert {s.statement.definition for s in steps if not s.spark} == {"macro", "type"}


@pytest.mark.parametrize(
    "sql, why",
    [
        ("select foo_bar(x) from t", "foo_bar()"),
        ("select bitstring_agg(k) from t", "bitstring_agg()"),
        ("select quantile_cont(x, [0.1, 0.9]) from t", "quantile"),
        ("select list(x order by y, k desc) from t", "mixed directions"),
        ("select * from t asof join t as u on t.d1 >= u.d2", "ASOF"),
        ("pivot t on g using sum(x)", "PIVOT|parse"),
        ("select d1 - v.z from t, (select null as z) as v", "cannot tell the type"),
    ],
)
def test_a_construct_that_does_not_carry_is_refused(sql, why):
    with pytest.raises(spark_sql.Untranslatable, match=why):
        spark_sql.to_spark(sql, SCHEMA)


def test_enum_types_hold_the_contracts_vocabulary():
    text = "\n".join(s.sql for s in prebuilt.statements() if s.definition == "type")
    for value in contract.SESSION_TYPES + contract.STATUSES:
        assert f"'{value}'" in text
