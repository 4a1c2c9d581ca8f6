"""The bench command."""

from __future__ import annotations

import sys


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
