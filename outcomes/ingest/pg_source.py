"""Load the four contract tables straight from a PostgreSQL schema, through the ADBC driver (Arrow, libpq).

`python -m outcomes load postgresql://USER@HOST:PORT/DB?schema=S` reads the tables (or views) named as in the
contract from schema S and runs the very validation and publish of a folder load (outcomes.loader); problems
name the table, the row's key and the column. A Unix socket is `?host=/path/to/dir`. The password is never part
of the URL: libpq takes it from PGPASSWORD, a service file (`?service=NAME`, PGSERVICEFILE) or ~/.pgpass
(PGPASSFILE), so it is in no command line, log or load record.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from outcomes.ingest import contract
from outcomes.ingest.loader import load as load_tables
from outcomes.ingest.problems import LoadError, LoadResult, Problem

SCHEMES = ("postgresql", "postgres")
# libpq URI parameters passed through; anything else is refused, a password above all.
PASSED = {
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "service",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslcrl",
    "connect_timeout",
    "application_name",
    "target_session_attrs",
    "options",
    "gssencmode",
    "channel_binding",
    "keepalives",
    "keepalives_idle",
    "krbsrvname",
    "require_auth",
}


class SourceError(ValueError):
    """The URL is not one this loader takes; the message says why (never echoing a password)."""


def is_url(text: str) -> bool:
    return urlsplit(str(text)).scheme.lower() in SCHEMES


@dataclass(frozen=True)
class Location:
    uri: str  # for libpq: the URL without `schema`
    schema: str
    shown: str  # what the load record keeps: the URL as given (it has no password)


def parse(url: str) -> Location:
    """Check a `postgresql://` URL and split off the `schema` parameter (default `public`)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise SourceError("a PostgreSQL source starts with postgresql://")
    if parts.password is not None:
        raise SourceError(
            "the URL holds a password; remove it and set PGPASSWORD, use a service file "
            "(?service=NAME) or ~/.pgpass instead"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise SourceError("the URL's port is not a number") from None
    params, schema = [], "public"
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = value
        elif key in ("password", "passfile") or key not in PASSED:
            raise SourceError(
                f"URL parameter {key!r} is not taken"
                + ("; give the password by PGPASSWORD, a service file or ~/.pgpass" if key == "password" else "")
            )
        else:
            params.append((key, value))
    if not schema:
        raise SourceError("?schema= is empty")
    uri = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params, quote_via=quote), ""))
    return Location(uri, schema, url)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresSource:
    """The contract's tables in one schema of a PostgreSQL database, as a loader TableSource."""

    def __init__(self, url: str):
        self.location = parse(url)
        self.label = self.location.shown
        self._con = None
        self._open = []  # cursors whose streams the loader may still be reading

    def __enter__(self) -> PostgresSource:
        import adbc_driver_postgresql.dbapi

        try:
            self._con = adbc_driver_postgresql.dbapi.connect(self.location.uri)
        except Exception as exc:  # the driver's own error classes; libpq's message names no password
            raise LoadError(
                [Problem(self.label, None, None, "unreadable", f"could not connect: {_first_line(exc)}")]
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        for cur in self._open:
            cur.close()
        self._open.clear()
        if self._con is not None:
            self._con.close()
            self._con = None

    def _rows(self, sql: str, params: tuple) -> list[tuple]:
        cur = self._con.cursor()
        try:
            cur.execute(sql, params)
            return cur.fetchall()
        finally:
            cur.close()

    def find(self) -> tuple[dict[str, str], list[Problem]]:
        present = {
            r[0]
            for r in self._rows(
                "select table_name from information_schema.tables where table_schema = $1", (self.location.schema,)
            )
        }
        found, problems = {}, []
        for name in contract.TABLES:
            label = f"{self.location.schema}.{name}"
            if name in present:
                found[name] = label
            else:
                problems.append(
                    Problem(
                        label, None, None, "missing-table", f"no table or view {name} in schema {self.location.schema}"
                    )
                )
        return found, problems

    def columns(self, name: str) -> list[str]:
        return [
            r[0]
            for r in self._rows(
                "select column_name from information_schema.columns where table_schema = $1 and table_name = $2 "
                "order by ordinal_position",
                (self.location.schema, name),
            )
        ]

    def read(self, name: str, columns: list[str]):
        cur = self._con.cursor()
        self._open.append(cur)
        cur.execute(
            f"select {', '.join(_ident(c) for c in columns)} from {_ident(self.location.schema)}.{_ident(name)}"
        )
        return cur.fetch_record_batch()  # streamed: the loader reads it once, batch by batch


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def load(url: str, db_path, as_of: dt.date | None = None, progress=None) -> LoadResult:
    """Validate the contract's tables in the URL's schema and atomically replace `db_path`; see loader.load."""
    with PostgresSource(url) as source:
        return load_tables(source, db_path, as_of, progress)
