"""Loading from a real PostgreSQL server gives the database a CSV load gives, and refuses bad rows by key.

One server per test session (initdb + pg_ctl on a temporary folder, Unix socket there, TCP on 127.0.0.1 with
password authentication for the credential tests). The headline fixture is copied into schemas of it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from pg_server import PASSWORD  # the `server` fixture itself comes from pg_server (a plugin)

from outcomes.cli import main
from outcomes.ingest import pg_source
from outcomes.ingest.loader import load
from outcomes.ingest.problems import LoadError

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ROOT / "tests" / "fixtures" / "headline"
AS_OF = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def csv_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "csv.duckdb"
    load(HEADLINE, path, AS_OF)
    return path


def tables_of(con, db: str) -> dict[str, list[tuple]]:
    return {
        t: con.execute(
            "select column_name, data_type from duckdb_columns() where database_name = $d and "
            "table_name = $t order by column_index",
            {"d": db, "t": t},
        ).fetchall()
        for (t,) in con.execute("select table_name from duckdb_tables() where database_name = $d", {"d": db}).fetchall()
    }


def assert_same_database(a: Path, b: Path, skip=("load_info", "load_files")) -> None:
    """Same tables, same columns and types, same rows (as multisets) in every table but the load record."""
    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    ta, tb = tables_of(con, "a"), tables_of(con, "b")
    assert sorted(ta) == sorted(tb)
    for table in sorted(set(ta) - set(skip)):
        assert ta[table] == tb[table], f"{table}: columns or types differ"
        for x, y in (("a", "b"), ("b", "a")):
            extra = con.execute(
                f"select count(*) from (select * from {x}.{table} except all select * from {y}.{table})"
            ).fetchone()[0]
            assert extra == 0, f"{table}: {extra} rows in {x} but not in {y}"
    con.close()


def test_postgres_load_equals_csv_load(server, csv_db, tmp_path):
    result = pg_source.load(server.url("good"), tmp_path / "pg.duckdb", AS_OF)
    assert result.rows == {"clients": 20, "enrollments": 35, "attendance": 41, "transitions": 5}
    assert_same_database(csv_db, tmp_path / "pg.duckdb")
    con = duckdb.connect(str(tmp_path / "pg.duckdb"), read_only=True)
    assert con.execute("select data_through, source_folder from load_info").fetchone() == (AS_OF, server.url("good"))
    assert (
        con.execute("select file_name from load_files where table_name = 'enrollments'").fetchone()[0]
        == "good.enrollments"
    )
    con.close()


def test_cli_loads_from_a_url(server, tmp_path, capsys):
    assert (
        main(["load", server.url("good"), "--db", str(tmp_path / "cli.duckdb"), "--as-of", "2025-06-30", "--quiet"])
        == 0
    )
    assert "loaded" in capsys.readouterr().out


def test_views_are_read_and_a_missing_table_is_named(server, tmp_path):
    server.execute(
        "drop schema if exists partial cascade",
        "create schema partial",
        *(f"create view partial.{t} as select * from good.{t}" for t in ("clients", "enrollments", "attendance")),
    )
    with pytest.raises(LoadError) as err:
        pg_source.load(server.url("partial"), tmp_path / "x.duckdb", AS_OF)
    assert [(p.file, p.rule) for p in err.value.problems] == [("partial.transitions", "missing-table")]
    assert not (tmp_path / "x.duckdb").exists()


def test_bad_rows_are_named_by_table_key_and_column(server, tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(HEADLINE, folder)

    def edit(name: str, old: str, new: str) -> None:
        path = folder / f"{name}.csv"
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new, 1))

    edit("enrollments", "E-SD01-I,SD01,Northside,iop,", "E-SD01-I,SD01,Northside,IOP,")  # not in the vocabulary
    edit(
        "enrollments",
        "E-SD02-R,SD02,Northside,residential,2025-02-14,",
        "E-SD02-R,SD02,Northside,residential,2025-03-14,",
    )
    edit("attendance", "S-SD02-01,E-SD02-I,", "S-SD02-01,E-NOPE,")  # no such episode
    edit("clients", "SD03,1978,", "SD03,nineteen,")  # text in a column the warehouse holds as text
    clients = folder / "clients.csv"
    clients.write_text(clients.read_text() + clients.read_text().splitlines()[1] + "\n")  # SD01 twice
    server.load_folder(folder, "bad", types={("clients", "birth_year"): "text"})
    live = tmp_path / "live.duckdb"
    load(HEADLINE, live, AS_OF)
    before = live.read_bytes()
    with pytest.raises(LoadError) as err:
        pg_source.load(server.url("bad"), live, AS_OF)
    assert live.read_bytes() == before, "a refused load changed the live database"
    found = {(p.file, p.key, p.column, p.rule) for p in err.value.problems}
    assert found >= {
        ("bad.enrollments", "episode_id E-SD01-I", "level_of_care", "allowed-values"),
        ("bad.enrollments", "episode_id E-SD02-R", "discharge_date", "discharge-before-admit"),
        ("bad.attendance", "session_id S-SD02-01", "episode_id", "foreign-key"),
        ("bad.clients", "client_id SD01", "client_id", "unique"),
        ("bad.clients", "client_id SD03", "birth_year", "type"),
    }, err.value.report()
    assert all(p.line is None for p in err.value.problems)
    assert "bad.enrollments, episode_id E-SD01-I, column level_of_care: not one of" in err.value.report()


def test_identifier_columns_are_refused_before_any_row_is_read(server, tmp_path):
    server.execute(
        "drop schema if exists named cascade",
        "create schema named",
        *(f"create view named.{t} as select * from good.{t}" for t in ("enrollments", "attendance", "transitions")),
        "create view named.clients as select *, 'Jane' as first_name from good.clients",
    )
    with pytest.raises(LoadError) as err:
        pg_source.load(server.url("named"), tmp_path / "x.duckdb", AS_OF)
    [p] = err.value.problems
    assert (p.file, p.column, p.rule, p.line) == ("named.clients", "first_name", "privacy", None)


def test_password_from_the_environment_never_reaches_the_load_record(server, tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    db = tmp_path / "tcp.duckdb"
    pg_source.load(server.tcp_url("good"), db, AS_OF)
    assert PASSWORD.encode() not in db.read_bytes()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("select source_folder from load_info").fetchone()[0] == server.tcp_url("good")
    con.close()


def test_password_from_a_pgpass_file(server, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{server.port}:postgres:reader:{PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    assert pg_source.load(server.tcp_url("good"), tmp_path / "pass.duckdb", AS_OF).changed


def test_wrong_password_is_refused_without_echoing_it(server, tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "not-the-password-42")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    with pytest.raises(LoadError) as err:
        pg_source.load(server.tcp_url("good"), tmp_path / "x.duckdb", AS_OF)
    assert err.value.problems[0].rule == "unreadable" and "could not connect" in err.value.problems[0].message
    assert "not-the-password-42" not in err.value.report()


def test_a_password_in_the_url_is_refused(server, tmp_path, capsys):
    url = f"postgresql://reader:{PASSWORD}@127.0.0.1:{server.port}/postgres?schema=good"
    assert main(["load", url, "--db", str(tmp_path / "x.duckdb")]) == 2
    err = capsys.readouterr().err
    assert "PGPASSWORD" in err and PASSWORD not in err
    assert not (tmp_path / "x.duckdb").exists()
    with pytest.raises(pg_source.SourceError):
        pg_source.parse(f"postgresql://reader@127.0.0.1/postgres?password={PASSWORD}")
