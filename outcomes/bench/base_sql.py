"""The two headline measures in DuckDB from the base tables alone (queries/_base/), for the benchmark: the
same definitions as the catalog's queries, without the load-time tables they read."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd

from outcomes.paths import ROOT

BASE_DIR = ROOT / "queries" / "_base"
MEASURES_SQL = {name: BASE_DIR / f"{name}.sql" for name in ("stepdown_rate", "engagement_by_week")}


def read_tables(db_path: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the database whose base tables (clients, enrollments, attendance) are read."""
    return duckdb.connect(str(db_path), read_only=True)


def _measure(name: str):
    sql = MEASURES_SQL[name].read_text()
    names = sorted(set(re.findall(r"\$([a-z_]+)", sql)))

    def run(con: duckdb.DuckDBPyConnection, **params) -> pd.DataFrame:
        return con.execute(sql, {k: params.get(k) for k in names}).df()

    run.__doc__ = f"{name} from the base tables, with the catalog query's parameters (absent: None)."
    return run


MEASURES = {name: _measure(name) for name in MEASURES_SQL}
