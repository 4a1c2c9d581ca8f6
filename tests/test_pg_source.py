"""Loading from a real PostgreSQL server gives the database a CSV load gives, and refuses bad rows by key.

One server per test session (initdb + pg_ctl on a temporary folder, Unix socket there, TCP on 127.0.0.1 with
password authentication for the credential tests). The headline fixture is copied into schemas of it.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import duckdb
import pytest

from outcomes.cli import main
from outcomes.ingest import contract, pg_source
from outcomes.ingest.loader import load
from outcomes.ingest.problems import LoadError

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ROOT / "tests" / "fixtures" / "headline"
AS_OF = dt.date(2025, 6, 30)
PASSWORD = "pw-Zq83-never-logged"
PG_TYPES = {"VARCHAR": "text", "INTEGER": "integer", "DATE": "date", "BOOLEAN": "boolean"}


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which and shutil.which("initdb") else None


class Server:
    """A running server: socket URLs for setup and loads, a TCP URL that needs a password."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port

    def url(self, schema: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@/postgres?host={self.root}&port={self.port}&schema={schema}"

    def tcp_url(self, schema: str, user: str = "reader") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/postgres?schema={schema}"

    def execute(self, *statements: str) -> None:
        import adbc_driver_postgresql.dbapi

        with adbc_driver_postgresql.dbapi.connect(pg_source.parse(self.url("public")).uri) as con:
            cur = con.cursor()
            for sql in statements:
                cur.execute(sql)
            cur.close()
            con.commit()

    def load_folder(self, folder: Path, schema: str, types: dict[tuple[str, str], str] | None = None) -> None:
        """Create `schema` holding the folder's CSV files as tables of the contract's types (or `types`)."""
        statements = [f"drop schema if exists {schema} cascade", f"create schema {schema}"]
        for name, table in contract.TABLES.items():
            path = folder / f"{name}.csv"
            if not path.exists():
                continue
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            header = rows[0]
            cols = ", ".join(f"{c} {(types or {}).get((name, c), PG_TYPES[table.column(c).type])}" for c in header)
            statements.append(f"create table {schema}.{name} ({cols})")
            for row in rows[1:]:
                values = ", ".join("null" if v == "" else "'" + v.replace("'", "''") + "'" for v in row)
                statements.append(f"insert into {schema}.{name} values ({values})")
        self.execute(*statements)


@pytest.fixture(scope="session")
def server():
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql")
    root = Path(tempfile.mkdtemp(prefix="outcomes-pg-"))
    as_postgres = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    run = lambda *cmd: subprocess.run(as_postgres + [str(c) for c in cmd], check=True, capture_output=True)
    run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256")
    run(
        bindir / "pg_ctl",
        "-D",
        data,
        "-l",
        root / "log",
        "-w",
        "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
        "start",
    )
    try:
        srv = Server(root, port)
        srv.execute(f"create role reader login password '{PASSWORD}'")
        srv.load_folder(HEADLINE, "good")
        srv.execute("grant usage on schema good to reader", "grant select on all tables in schema good to reader")
        yield srv
    finally:
        run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


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
