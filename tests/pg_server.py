"""A real PostgreSQL server for tests: initdb and pg_ctl on a temporary folder (Unix socket there, TCP on
127.0.0.1 with password authentication), the headline fixture loaded into schema `good`. One per test session;
conftest.py registers this module as a plugin so every test module can ask for `server`."""

from __future__ import annotations

import csv
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from outcomes.ingest import contract, pg_source

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ROOT / "tests" / "fixtures" / "headline"
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
