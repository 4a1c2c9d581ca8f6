"""Command line: `python -m outcomes COMMAND`. Errors print one line on stderr and exit non-zero."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
import tempfile
from pathlib import Path

import duckdb

from outcomes.catalog import runner
from outcomes.catalog.query import CatalogError, load_catalog
from outcomes.ingest import db
from outcomes.ingest.prebuilt import BuildError
from outcomes.paths import QUERY_DIR
from outcomes.present import files as output
from outcomes.privacy import audit, suppress


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
    from outcomes.ingest import pg_source
    from outcomes.ingest.loader import LoadError, load

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
    from outcomes.scale import spark_build

    manifest = spark_build.build(
        args.source,
        args.out,
        args.master,
        conf=spark_build.conf_pairs(args.conf),
        progress=lambda m: print(m, file=sys.stderr),
    )
    print(f"built {args.out}: " + ", ".join(f"{k} {v:,}" for k, v in manifest["rows"].items()))
    print(f"publish it with: python -m outcomes load {args.source} --prebuilt {args.out}")
    return 0


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr)


def cmd_demo(args) -> int:
    from outcomes.ingest.demo import generate

    counts = generate(
        args.out, clients=args.clients, seed=args.seed, fmt=args.format, progress=None if args.quiet else _progress
    )
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if args.load:
        from outcomes.ingest.loader import load

        result = load(args.out, args.db)
        print(f"loaded {args.db}; data through {result.data_through}")
    return 0


def cmd_list(args) -> int:
    for q in load_catalog(args.queries).values():
        params = ", ".join(f"{p.name}:{p.type}" for p in q.params.values())
        print(f"{q.name}\t{q.title}\t{params}")
    return 0


def cli_user() -> str:
    """Who ran a command, for the audit log: cli:LOGIN."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry for this uid (containers)
        return f"cli:uid{os.getuid()}"


def cmd_query(args) -> int:
    catalog = load_catalog(args.queries)
    if args.name not in catalog:
        raise CliError(f"unknown query {args.name!r}; `python -m outcomes list` shows the catalog")
    given = _params(args.param)
    con = db.connect(args.db)
    try:
        result = runner.run(con, catalog[args.name], given, raw=args.raw, timeout=args.timeout)
    except (ValueError, runner.QueryTimeout, duckdb.Error) as exc:
        audit.catalog_run(
            cli_user(),
            args.name,
            given,
            None,
            None,
            None,
            page="cli",
            raw=args.raw,
            outcome="error",
            error=type(exc).__name__,
        )
        raise
    finally:
        con.close()
    audit.catalog_run(
        cli_user(),
        args.name,
        given,
        None,
        len(result.data),
        int(result.mask.to_numpy().sum()),
        page="cli",
        raw=args.raw,
        outcome="ok",
        seconds=round(result.seconds, 3),
    )
    data = result.data
    if args.raw:
        text = output.FORMATS[args.format](data)
    elif args.format == "table":
        spec = catalog[args.name].suppress
        text = output.to_table(suppress.for_screen(output.plain_dates(data), result.mask, spec, result.reasons))
        note = suppress.legend(result.reasons, spec)
        text = text.rstrip("\n") + (f"\n{note}" if note else "")
    else:  # csv, json: hidden cells empty, and a column saying which are hidden and why
        text = output.FORMATS[args.format](data, result.reasons)
    sys.stdout.write(text.rstrip("\n") + "\n")
    for note in result.notes:  # e.g. whether a model query's fit converged
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_check(args) -> int:
    from outcomes.catalog.checks import check_all, check_goldens, golden_db

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else None
        if path is None or not path.exists():
            path = _demo_db(Path(tmp))
        con = db.connect(path)
        try:
            problems = check_all(con, args.queries)
        finally:
            con.close()
        con = db.connect(golden_db(Path(tmp)))  # golden files: each query's output on the headline fixture
        try:
            found, written = check_goldens(con, args.queries, update=args.update_golden)
        finally:
            con.close()
        problems += found
        for w in written:
            print(f"wrote {w}: review it with git diff")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(load_catalog(args.queries))} queries OK")
    return 0


def cmd_sql(args) -> int:
    from outcomes.catalog import adhoc, sandbox

    text = sys.stdin.read() if args.statement == "-" else args.statement
    if args.timeout <= 0 or args.max_rows <= 0:
        raise CliError("--timeout and --max-rows must be positive")
    pool = sandbox.Pool(1, sandbox.Limits.from_env())  # one worker: it parses the statement before opening --db
    try:
        result = sandbox.run(
            text,
            args.db,
            raw=args.raw,
            timeout=args.timeout,
            max_rows=args.max_rows,
            pool=pool,
            user=cli_user(),
            page="cli",
            sites="*",
        )
    finally:
        pool.close()
    data = adhoc.screen(result) if args.format == "table" and not args.raw else result.data
    sys.stdout.write(output.FORMATS[args.format](data).rstrip("\n") + "\n")
    if result.truncated:
        print(f"note: truncated to the first {args.max_rows:,} rows (--max-rows)", file=sys.stderr)
    return 0


def cmd_audit(args) -> int:
    path = args.log or audit.log_path()
    if args.action == "verify":
        anchor = None
        if args.anchor:
            seq, _, digest = args.anchor.partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise CliError(f"--anchor {args.anchor!r}: expected SEQ:SHA256 (as printed by audit verify)")
            anchor = (int(seq), digest.lower())
        from outcomes.privacy.audit_verify import verify

        state = verify(path, anchor)
        print(state.summary(), file=sys.stdout if state.ok else sys.stderr)
        return 0 if state.ok else 1
    if args.action == "rotate":
        from outcomes.privacy.audit_retention import rotate

        moved = rotate(path)
        print(f"rotated {path} to {moved.name}" if moved else f"nothing to rotate in {path}")
        return 0
    from outcomes.privacy.audit_retention import prune

    removed = prune(path, args.years)
    years = args.years or audit.retention_years()
    print(
        f"removed {len(removed)} rotated file(s) older than {years} years"
        + (": " + ", ".join(removed) if removed else "")
    )
    return 0


def cmd_new(args) -> int:
    from outcomes.catalog.scaffold import new

    path = new(args.name, args.queries)
    print(f"wrote {path}: a working example with every header key; edit it, then run `python -m outcomes check`")
    return 0


def cmd_bench(args) -> int:
    from outcomes.bench import harness as bench

    result = bench.run(
        args.clients,
        runs=args.runs,
        seed=args.seed,
        json_path=args.json,
        workdir=args.workdir,
        reuse=args.reuse,
        keep=args.keep,
        progress=lambda m: print(m, file=sys.stderr),
        engine=args.engine,
    )
    print(bench.summary(result))
    print(f"saved {result['json_path']}")
    return 0


def cmd_signals(args) -> int:
    from outcomes.measures import signals

    con = db.connect(args.db)
    try:
        known = signals.sites_of(con)
        unknown = [s for s in args.site or [] if s not in known]
        if unknown:
            raise CliError(f"unknown site {', '.join(unknown)} (the data has {', '.join(known)})")
        found = signals.scan(con, sites=args.site or None)
    finally:
        con.close()
    sys.stdout.write(output.FORMATS[args.format](signals.table(found)).rstrip("\n") + "\n")
    return 0


def _when(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date and time such as 2025-11-03T07:05") from None


def cmd_digest(args) -> int:
    from outcomes.deliver import alerts, digest, mailer
    from outcomes.privacy import access

    try:
        config = digest.load_digests(args.config)
        catalog = load_catalog()
        rules = alerts.load_alerts(args.alerts, config.by_name(), catalog)
        roles = access.roles_path()
        if roles.exists():
            digest.check_roles(config, access.load_roles(roles), roles.name)
        settings = None if args.dry_run else mailer.load_settings()
        if settings is None and not args.dry_run:
            raise CliError(
                "no SMTP settings: set [smtp] host, port, username, password and from in "
                f".streamlit/secrets.toml or {mailer.ENV_PREFIX}HOST etc. (or use --dry-run DIR)"
            )
        now = args.now
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=config.timezone)
        outbox = digest.Outbox(settings, args.dry_run, audit.log_path(mailer.read_secrets().get("audit_log")))
        mode = "due" if args.due else "all" if args.all else "recipient"
        con = db.connect(args.db)
        try:
            report = digest.run(
                con,
                config,
                mode=mode,
                names=args.recipient,
                rules=rules,
                state_file=mailer.state_path(args.state),
                outbox=outbox,
                now=now,
                catalog=catalog,
            )
        finally:
            con.close()
    except mailer.Busy as exc:
        print(f"note: {exc}", file=sys.stderr)
        return 0
    except (
        digest.DigestConfigError,
        alerts.AlertConfigError,
        access.RolesError,
        mailer.SettingsError,
        mailer.StateError,
        audit.AuditError,
    ) as exc:
        raise CliError(str(exc)) from None
    for line in report.lines:
        print(line, file=sys.stderr if line.startswith("FAILED") else sys.stdout)
    if not report.lines:
        print("nothing due")
    return 1 if report.failed else 0


def _demo_db(tmp: Path) -> Path:
    from outcomes.ingest.demo import generate
    from outcomes.ingest.loader import load

    generate(tmp / "demo", clients=800, seed=7)
    load(tmp / "demo", tmp / "demo.duckdb")
    return tmp / "demo.duckdb"


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
    p.add_argument("--as-of", type=_date, help="data-through date (default: the latest date in the data)")
    p.add_argument(
        "--prebuilt",
        type=Path,
        help="publish the load-time tables built in this folder by `build` instead of building them",
    )
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
    p.add_argument(
        "--update-golden",
        action="store_true",
        help="write tests/golden/NAME.csv for every query (the output on the headline fixture), for review",
    )
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
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("new", help="start a new catalog query from a working template")
    p.add_argument("name", help="lower_snake_case; writes queries/NAME.sql")
    p.add_argument("--queries", type=Path, default=QUERY_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("signals", help="control-chart signals on every monthly rate series, per site and overall")
    p.add_argument("--db", type=Path, default=db.DEFAULT_DB)
    p.add_argument(
        "--site",
        nargs="+",
        metavar="S",
        help="these sites, each and together (default: every site, each and all together)",
    )
    p.add_argument("--format", choices=tuple(output.FORMATS), default="table")
    p.set_defaults(func=cmd_signals)

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
    p.add_argument("--now", type=_when, metavar="ISO", help="the time to act as at (default: now)")
    p.add_argument("--config", type=Path, default=None, help="digests file (default: config/digests.toml)")
    p.add_argument("--alerts", type=Path, default=None, help="alerts file (default: config/alerts.toml)")
    p.add_argument("--state", type=Path, default=None, help="state file (default: data/digest_state.json)")
    p.set_defaults(func=cmd_digest)

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
    p.set_defaults(func=cmd_bench)
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
