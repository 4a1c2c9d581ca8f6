"""Commands over the query catalog: list, query, check, sql and new."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import duckdb

from outcomes.catalog import runner
from outcomes.catalog.query import load_catalog
from outcomes.commands.common import CliError, cli_user, params_arg
from outcomes.ingest import db
from outcomes.present import files as output
from outcomes.privacy import audit, suppress


def cmd_list(args) -> int:
    for q in load_catalog(args.queries).values():
        params = ", ".join(f"{p.name}:{p.type}" for p in q.params.values())
        print(f"{q.name}\t{q.title}\t{params}")
    return 0


def cmd_query(args) -> int:
    catalog = load_catalog(args.queries)
    if args.name not in catalog:
        raise CliError(f"unknown query {args.name!r}; `python -m outcomes list` shows the catalog")
    given = params_arg(args.param)
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


def cmd_new(args) -> int:
    from outcomes.catalog.scaffold import new

    path = new(args.name, args.queries)
    print(f"wrote {path}: a working example with every header key; edit it, then run `python -m outcomes check`")
    return 0


def _demo_db(tmp: Path) -> Path:
    from outcomes.ingest.demo import generate
    from outcomes.ingest.loader import load

    generate(tmp / "demo", clients=800, seed=7)
    load(tmp / "demo", tmp / "demo.duckdb")
    return tmp / "demo.duckdb"
