"""A few program events for the demo data: the optional annotations extract, fixed relative to its dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def _month(day: dt.date, k: int) -> dt.date:
    m = day.year * 12 + day.month - 1 + k
    return dt.date(m // 12, m % 12 + 1, 1)


def events(start: dt.date, through: dt.date, sites: tuple[str, ...]) -> list[tuple]:
    """(annotation_id, start_date, end_date, site, label, category): one event for every site, one span and
    one day for single sites, all between `start` and `through`."""
    last = through.replace(day=1)
    north, river, east = (sites + (None, None, None))[:3]
    out = [
        ("A001", _month(start, 6), None, None, "New intake assessment in use", "process"),
        ("A002", _month(last, -9), None, north, "Transport to IOP starts", "service"),
        (
            "A003",
            _month(last, -6),
            _month(last, -4) - dt.timedelta(days=1),
            river,
            "Staffing gap: two counsellor posts vacant",
            "staffing",
        ),
        ("A004", _month(last, -12) + dt.timedelta(days=14), None, east, "Evening IOP track opens", "service"),
    ]
    return [e for e in out if e[1] <= through and (e[3] is not None or e[0] == "A001")]


SCHEMA = pa.schema(
    [
        ("annotation_id", pa.string()),
        ("start_date", pa.date32()),
        ("end_date", pa.date32()),
        ("site", pa.string()),
        ("label", pa.string()),
        ("category", pa.string()),
    ]
)


def write(out: Path, fmt: str, start: dt.date, through: dt.date, sites: tuple[str, ...]) -> int:
    """Write annotations.csv or .parquet beside the other extracts (removing the other format); returns rows."""
    rows = events(start, through, sites)
    table = pa.Table.from_pylist([dict(zip(SCHEMA.names, r)) for r in rows], schema=SCHEMA)
    path = out / f"annotations.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
    (out / f"annotations.{'csv' if fmt == 'parquet' else 'parquet'}").unlink(missing_ok=True)
    return len(rows)
