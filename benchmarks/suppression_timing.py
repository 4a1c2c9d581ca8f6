"""Time small-cell suppression alone for every catalog query: `python benchmarks/suppression_timing.py DB`.

Each query runs raw once per filter view (defaults, one site, one payer); `suppress` is then timed on that
raw frame (median of repeated calls, ms). Prints one line per query and view: rows, cells hidden, ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

from outcomes.catalog import runner
from outcomes.catalog.query import load_catalog
from outcomes.ingest import db
from outcomes.privacy import suppress as sup


def views(con, query) -> list[tuple[str, dict]]:
    out = [("defaults", {})]
    if "sites" in query.params:
        site = con.execute("select min(site) from enrollments").fetchone()[0]
        out.append((f"site={site}", {"sites": site}))
    if "payers" in query.params:
        payer = con.execute("select min(payer) from enrollments where payer is not null").fetchone()[0]
        out.append((f"payer={payer}", {"payers": payer}))
    return out


def timed(df, spec, repeat: int) -> tuple[float, int]:
    times, hidden = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        _, mask = sup.suppress(df, spec)
        times.append((time.perf_counter() - started) * 1000)
        hidden = int(mask.to_numpy().sum())
    return statistics.median(times), hidden


def main(path: str, repeat: int = 7) -> None:
    con = db.connect(path)
    total = []
    for name, query in sorted(load_catalog().items()):
        for label, given in views(con, query):
            raw = runner.run(con, query, given, raw=True, timeout=None).data
            ms, hidden = timed(raw, query.suppress, repeat)
            total.append(ms)
            print(f"{name:28s} {label:22s} rows {len(raw):5d} hidden {hidden:5d} {ms:8.2f} ms", flush=True)
    print(f"sum {sum(total):.1f} ms over {len(total)} runs; max {max(total):.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7)
