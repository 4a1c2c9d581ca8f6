"""Command line: `python -m outcomes COMMAND`. Errors print one line on stderr and exit non-zero."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

from outcomes.catalog import runner
from outcomes.catalog.query import CatalogError
from outcomes.commands import bench, catalog, data, deliver
from outcomes.commands.common import CliError, date_arg
from outcomes.ingest import db
from outcomes.ingest.prebuilt import BuildError
from outcomes.paths import QUERY_DIR
from outcomes.present import files as output
from outcomes.privacy import audit


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m outcomes", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("load", help="validate extracts and build the database")
    p.add_argument(
        "source",
        help="a folder of extracts, or postgresql://USER@HOST:PORT/DB?schema=S "
        "(password from PGPASSWORD, a service file or ~/.pgpass)",
    )
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--as-of", type=date_arg, help="data-through date (default: the latest date in the data)")
    p.add_argument(
        "--prebuilt",
        type=Path,
        help="publish the load-time tables built in this folder by `build` instead of building them",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=data.cmd_load)

    p = sub.add_parser("build", help="build the load-time tables on Spark into a folder, for load --prebuilt")
    p.add_argument("--engine", choices=("spark",), default="spark")
    p.add_argument("--source", required=True, help="the extracts as Parquet: a lake or a flat folder")
    p.add_argument("--out", required=True, help="folder for the built tables")
    p.add_argument("--master", default="local[*]", help="Spark master URL (default %(default)s)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting")
    p.set_defaults(func=data.cmd_build)

    p = sub.add_parser("demo", help="write a synthetic dataset")
    p.add_argument("out", type=Path)
    p.add_argument("--clients", type=int, default=5000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.add_argument("--load", action="store_true", help="also load it into --db")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=data.cmd_demo)

    p = sub.add_parser("list", help="list the query catalog")
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=catalog.cmd_list)

    p = sub.add_parser("query", help="run a catalog query")
    p.add_argument("name")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="list values comma-separated")
    p.add_argument("--format", choices=tuple(output.FORMATS), default="table")
    p.add_argument("--raw", action="store_true", help="no small-cell suppression (for checking numbers)")
    p.add_argument("--timeout", type=float, default=runner.DEFAULT_TIMEOUT)
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=catalog.cmd_query)

    p = sub.add_parser("check", help="check every query: header, parameters, runs, chart and suppression")
    p.add_argument("--db", type=Path, help="database to run on (default: a small demo database)")
    p.add_argument(
        "--update-golden",
        action="store_true",
        help="write tests/golden/NAME.csv for every query (the output on the headline fixture), for review",
    )
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=catalog.cmd_check)

    p = sub.add_parser("sql", help="run one read-only ad-hoc SELECT (suppressed unless --raw)")
    p.add_argument("statement", help="the SQL, quoted; - reads it from stdin")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--format", choices=tuple(output.FORMATS), default="table")
    p.add_argument("--raw", action="store_true", help="no small-cell suppression (for checking numbers)")
    p.add_argument("--timeout", type=float, default=runner.DEFAULT_TIMEOUT, help="seconds (default %(default)g)")
    p.add_argument("--max-rows", type=int, default=runner.DEFAULT_MAX_ROWS, help="rows shown (default %(default)d)")
    p.set_defaults(func=catalog.cmd_sql)

    p = sub.add_parser("audit", help="verify, rotate or prune the hash-chained audit log")
    actions = p.add_subparsers(dest="action", required=True)
    for name, text in (
        ("verify", "check the chain; exits 1 and names the first broken line"),
        ("rotate", "start a new file that continues the chain"),
        ("prune", "delete rotated files whose every line is older than the retention period"),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("--log", type=Path, help="the log (default $OUTCOMES_AUDIT_LOG or data/audit.jsonl)")
        if name == "verify":
            a.add_argument(
                "--anchor", metavar="SEQ:SHA256", help="a seq and hash recorded elsewhere that must still be there"
            )
        if name == "prune":
            a.add_argument(
                "--years", type=int, help=f"retention (default ${audit.RETENTION_ENV} or {audit.RETENTION_YEARS})"
            )
    p.set_defaults(func=deliver.cmd_audit)

    p = sub.add_parser("new", help="start a new catalog query from a working template")
    p.add_argument("name", help="lower_snake_case; writes queries/NAME.sql")
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=catalog.cmd_new)

    p = sub.add_parser("signals", help="control-chart signals on every monthly rate series, per site and overall")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument(
        "--site",
        nargs="+",
        metavar="S",
        help="these sites, each and together (default: every site, each and all together)",
    )
    p.add_argument("--format", choices=tuple(output.FORMATS), default="table")
    p.set_defaults(func=deliver.cmd_signals)

    p = sub.add_parser("digest", help="build and e-mail each recipient's digest (config/digests.toml) and alerts")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--due",
        action="store_true",
        help="what the schedules make due and is not sent yet, and the alerts (for cron or a timer)",
    )
    which.add_argument("--all", action="store_true", help="every recipient now, for the last full period")
    which.add_argument("--recipient", nargs="+", metavar="NAME", help="these recipients now")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--dry-run", type=Path, metavar="DIR", help="write each message to DIR as .eml instead of sending")
    p.add_argument("--now", type=deliver.when, metavar="ISO", help="the time to act as at (default: now)")
    p.add_argument("--config", type=Path, default=None, help="digests file (default: config/digests.toml)")
    p.add_argument("--alerts", type=Path, default=None, help="alerts file (default: config/alerts.toml)")
    p.add_argument("--state", type=Path, default=None, help="state file (default: data/digest_state.json)")
    p.set_defaults(func=deliver.cmd_digest)

    p = sub.add_parser("bench", help="benchmark generation, load, every query and page, and a pandas baseline")
    p.add_argument("--clients", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=7, help="timed runs per query and per page rerun (median)")
    p.add_argument("--json", type=Path, help="result file (default: benchmarks/results/bench-CLIENTS.json)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workdir", type=Path, help="folder for the data and database (default: a temporary one)")
    p.add_argument("--reuse", action="store_true", help="reuse data already generated in --workdir")
    p.add_argument("--keep", action="store_true", help="keep the data and database")
    p.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="spark: also build the load-time tables on Spark local[2], timed beside DuckDB",
    )
    p.set_defaults(func=bench.cmd_bench)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (
        CliError,
        CatalogError,
        db.NoDatabase,
        runner.QueryTimeout,
        ValueError,
        audit.AuditError,
        BuildError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
