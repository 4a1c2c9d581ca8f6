"""Command line: `python -m outcomes COMMAND`. Errors print one line on stderr and exit non-zero."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import duckdb

from . import db, output, runner, suppress
from .catalog import QUERY_DIR, CatalogError, load_catalog


class CliError(Exception):
    """A user error worth one line on stderr."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise CliError(f"--param {pair!r}: expected key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def cmd_load(args) -> int:
    from .loader import LoadError, load

    try:
        result = load(args.source, args.db, args.as_of, progress=None if args.quiet else _progress)
    except LoadError as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    if not result.changed:
        print(f"no change: {args.db} already holds these files (data through {result.data_through})")
        return 0
    rows = ", ".join(f"{k} {v:,}" for k, v in result.rows.items())
    print(f"loaded {args.db}: {rows}; data through {result.data_through}; {result.seconds:.1f} s")
    for table, cols in result.ignored_columns.items():
        if cols:
            print(f"note: {table}: ignored columns not in the contract: {', '.join(cols)}")
    return 0


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr)


def cmd_demo(args) -> int:
    from .demo import generate

    counts = generate(args.out, clients=args.clients, seed=args.seed, fmt=args.format,
                      progress=None if args.quiet else _progress)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if args.load:
        from .loader import load

        result = load(args.out, args.db)
        print(f"loaded {args.db}; data through {result.data_through}")
    return 0


def cmd_list(args) -> int:
    for q in load_catalog(args.queries).values():
        params = ", ".join(f"{p.name}:{p.type}" for p in q.params.values())
        print(f"{q.name}\t{q.title}\t{params}")
    return 0


def cmd_query(args) -> int:
    catalog = load_catalog(args.queries)
    if args.name not in catalog:
        raise CliError(f"unknown query {args.name!r}; `python -m outcomes list` shows the catalog")
    con = db.connect(args.db)
    try:
        result = runner.run(con, catalog[args.name], _params(args.param), raw=args.raw, timeout=args.timeout)
    finally:
        con.close()
    data = result.data
    if args.format == "table" and not args.raw:
        data = suppress.for_screen(output.plain_dates(data), result.mask, catalog[args.name].suppress)
    sys.stdout.write(output.FORMATS[args.format](data).rstrip("\n") + "\n")
    return 0


def cmd_check(args) -> int:
    from .checks import check_all

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else None
        if path is None or not path.exists():
            path = _demo_db(Path(tmp))
        con = db.connect(path)
        try:
            problems = check_all(con, args.queries, golden=args.golden, update_golden=args.update_golden)
        finally:
            con.close()
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(load_catalog(args.queries))} queries OK")
    return 0


def _demo_db(tmp: Path) -> Path:
    from .demo import generate
    from .loader import load

    generate(tmp / "demo", clients=800, seed=7)
    load(tmp / "demo", tmp / "demo.duckdb")
    return tmp / "demo.duckdb"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m outcomes", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("load", help="validate extracts and build the database")
    p.add_argument("source", type=Path)
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--as-of", type=_date, help="data-through date (default: the latest date in the data)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("demo", help="write a synthetic dataset")
    p.add_argument("out", type=Path)
    p.add_argument("--clients", type=int, default=5000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.add_argument("--load", action="store_true", help="also load it into --db")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("list", help="list the query catalog")
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("query", help="run a catalog query")
    p.add_argument("name")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="list values comma-separated")
    p.add_argument("--format", choices=tuple(output.FORMATS), default="table")
    p.add_argument("--raw", action="store_true", help="no small-cell suppression (for checking numbers)")
    p.add_argument("--timeout", type=float, default=runner.DEFAULT_TIMEOUT)
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("check", help="check every query: header, parameters, runs, chart and suppression")
    p.add_argument("--db", type=Path, help="database to run on (default: a small demo database)")
    p.add_argument("--golden", action="store_true", help="compare with tests/golden/NAME.csv where present")
    p.add_argument("--update-golden", action="store_true", help="rewrite golden files for review")
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_check)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, CatalogError, db.NoDatabase, runner.QueryTimeout, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
