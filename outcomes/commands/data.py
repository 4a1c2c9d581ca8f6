"""Commands that make the database: load, build (Spark) and demo."""

from __future__ import annotations

import sys
from pathlib import Path

from outcomes.commands.common import CliError, print_progress


def cmd_load(args) -> int:
    from outcomes.ingest import pg_source
    from outcomes.ingest.loader import load
    from outcomes.ingest.problems import LoadError

    progress = None if args.quiet else print_progress
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


def cmd_demo(args) -> int:
    from outcomes.ingest.demo import generate

    counts = generate(
        args.out, clients=args.clients, seed=args.seed, fmt=args.format, progress=None if args.quiet else print_progress
    )
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if args.load:
        from outcomes.ingest.loader import load

        result = load(args.out, args.db)
        print(f"loaded {args.db}; data through {result.data_through}")
    return 0
