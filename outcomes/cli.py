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
from .prebuilt import BuildError


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
    from . import pg_source
    from .loader import LoadError, load

    progress = None if args.quiet else _progress
    try:
        if pg_source.is_url(args.source):
            if args.prebuilt:
                raise CliError("--prebuilt takes the folder of Parquet extracts it was built from, not a database")
            result = pg_source.load(args.source, args.db, args.as_of, progress=progress)
        else:
            result = load(Path(args.source), args.db, args.as_of, progress=progress, prebuilt=args.prebuilt)
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


def cmd_build(args) -> int:
    from . import spark_build

    manifest = spark_build.build(args.source, args.out, args.master, conf=spark_build.conf_pairs(args.conf),
                                 progress=lambda m: print(m, file=sys.stderr))
    print(f"built {args.out}: " + ", ".join(f"{k} {v:,}" for k, v in manifest["rows"].items()))
    print(f"publish it with: python -m outcomes load {args.source} --prebuilt {args.out}")
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
    from .checks import check_all, check_goldens, golden_db

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else None
        if path is None or not path.exists():
            path = _demo_db(Path(tmp))
        con = db.connect(path)
        try:
            problems = check_all(con, args.queries)
        finally:
            con.close()
        if args.golden or args.update_golden:  # golden files hold the output on the headline fixture
            con = db.connect(golden_db(Path(tmp)))
            try:
                found, written = check_goldens(con, args.queries, update=args.update_golden)
            finally:
                con.close()
            problems += found
            for w in written:
                print(f"rewrote {w.relative_to(QUERY_DIR.parent)}: review the change with git diff")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(load_catalog(args.queries))} queries OK")
    return 0


def cmd_sql(args) -> int:
    from . import adhoc

    text = sys.stdin.read() if args.statement == "-" else args.statement
    if args.timeout <= 0 or args.max_rows <= 0:
        raise CliError("--timeout and --max-rows must be positive")
    adhoc.statement(text)  # refuse before opening anything
    con = db.connect(args.db)
    try:
        result = adhoc.run(con, text, raw=args.raw, timeout=args.timeout, max_rows=args.max_rows)
    finally:
        con.close()
    data = adhoc.screen(result) if args.format == "table" and not args.raw else result.data
    sys.stdout.write(output.FORMATS[args.format](data).rstrip("\n") + "\n")
    if result.truncated:
        print(f"note: truncated to the first {args.max_rows:,} rows (--max-rows)", file=sys.stderr)
    return 0


def cmd_new(args) -> int:
    from .scaffold import new

    path = new(args.name, args.queries)
    print(f"wrote {path}: a working example with every header key; edit it, then run `python -m outcomes check`")
    return 0


def cmd_bench(args) -> int:
    from . import bench

    result = bench.run(args.clients, runs=args.runs, seed=args.seed, json_path=args.json, workdir=args.workdir,
                       reuse=args.reuse, keep=args.keep, progress=lambda m: print(m, file=sys.stderr),
                       engine=args.engine)
    print(bench.summary(result))
    print(f"saved {result['json_path']}")
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
    p.add_argument("source", help="a folder of extracts, or postgresql://USER@HOST:PORT/DB?schema=S "
                                  "(password from PGPASSWORD, a service file or ~/.pgpass)")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--as-of", type=_date, help="data-through date (default: the latest date in the data)")
    p.add_argument("--prebuilt", type=Path, help="publish the load-time tables built in this folder by "
                                                 "`build` instead of building them")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("build", help="build the load-time tables on Spark into a folder, for load --prebuilt")
    p.add_argument("--engine", choices=("spark",), default="spark")
    p.add_argument("--source", required=True, help="the extracts as Parquet: a lake or a flat folder")
    p.add_argument("--out", required=True, help="folder for the built tables")
    p.add_argument("--master", default="local[*]", help="Spark master URL (default %(default)s)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a Spark setting")
    p.set_defaults(func=cmd_build)

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
    p.add_argument("--golden", action="store_true",
                   help="compare with tests/golden/NAME.csv where present (output on the headline fixture)")
    p.add_argument("--update-golden", action="store_true", help="rewrite the golden files that exist, for review")
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("sql", help="run one read-only ad-hoc SELECT (suppressed unless --raw)")
    p.add_argument("statement", help="the SQL, quoted; - reads it from stdin")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument("--format", choices=tuple(output.FORMATS), default="table")
    p.add_argument("--raw", action="store_true", help="no small-cell suppression (for checking numbers)")
    p.add_argument("--timeout", type=float, default=runner.DEFAULT_TIMEOUT, help="seconds (default %(default)g)")
    p.add_argument("--max-rows", type=int, default=runner.DEFAULT_MAX_ROWS, help="rows shown (default %(default)d)")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("new", help="start a new catalog query from a working template")
    p.add_argument("name", help="lower_snake_case; writes queries/NAME.sql")
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("bench", help="benchmark generation, load, every query and page, and a pandas baseline")
    p.add_argument("--clients", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=7, help="timed runs per query and per page rerun (median)")
    p.add_argument("--json", type=Path, help="result file (default: benchmarks/results/bench-CLIENTS.json)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workdir", type=Path, help="folder for the data and database (default: a temporary one)")
    p.add_argument("--reuse", action="store_true", help="reuse data already generated in --workdir")
    p.add_argument("--keep", action="store_true", help="keep the data and database")
    p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help="spark: also build the load-time tables on Spark local[2], timed beside DuckDB")
    p.set_defaults(func=cmd_bench)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, CatalogError, db.NoDatabase, runner.QueryTimeout, ValueError, BuildError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
