"""Synthetic, de-identified demo data in the contract: clients, enrollments, attendance and transitions.

Clients are simulated in chunks through treatment courses (withdrawal management, residential,
PHP, IOP, OP, with step-downs, transfers and readmissions); every step is a numpy operation over
all clients or episodes of a chunk, and each chunk is streamed to the four files as it is made.
"""

from __future__ import annotations

import datetime
import os
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from outcomes.ingest import demo_annotations
from outcomes.ingest.contract import (
    DISCHARGE_REASONS,
    EMPLOYMENT,
    LEVELS,
    LIVING,
    SESSION_TYPES,
    STATUSES,
    TABLES,
    TRACKS,
)
from outcomes.ingest.demo_sim import ADMISSION_MONTHS, ASAM, GENDERS, PAYERS, SITES, SUBSTANCES, Sim

# Column order and types come from the contract, so the files always match what the loader reads.
ARROW_TYPES = {"VARCHAR": pa.string(), "INTEGER": pa.int32(), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}
SCHEMAS = {name: pa.schema([(c.name, ARROW_TYPES[c.type]) for c in table.columns]) for name, table in TABLES.items()}


def _ids(prefix: str, offset: int, n: int, width: int) -> pa.Array:
    numbers = pa.array(np.arange(offset + 1, offset + n + 1, dtype=np.int64))
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(pc.cast(numbers, pa.string()), width, "0"), "")


def _text(values, codes: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Strings for category codes; negative codes and `missing` rows become nulls."""
    mask = codes < 0 if missing is None else (codes < 0) | missing
    return pa.array(list(values), pa.string()).take(pa.array(codes, mask=mask))


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.date32(), mask=days < 0)


def _chunk(
    rng, n: int, first_client: int, counts: dict[str, int], start: date, through: date, width: int
) -> dict[str, pa.Table]:
    """Simulate n clients and return the four tables, numbering ids after those already written."""
    # Some simulated clients have care only before the window; simulate spares and keep the first n.
    e, spare = None, n // 3 + 16
    while e is None:
        sim = Sim(rng, n + spare, start, through)
        sim.run()
        e, spare = sim.episodes(n), spare * 2
    s = sim.sessions(e)

    def gaps(k: int, share: float = 0.02) -> np.ndarray:  # optional values left empty
        return rng.random(k) < share

    c, ne, ns = sim.clients, len(e["admit"]), len(s["day"])
    client_id, episode_id = _ids("C", first_client, n, width), _ids("E", counts["enrollments"], ne, 8)
    clients = dict(
        client_id=client_id,
        birth_year=pa.array(sim.birth_year[c].astype(np.int32), mask=gaps(n)),
        gender=_text(GENDERS, sim.gender[c], gaps(n)),
        primary_substance=_text(SUBSTANCES, sim.substance[c], gaps(n)),
        co_occurring_mh=pa.array(sim.mh[c], mask=gaps(n)),
        living_situation=_text(LIVING, sim.living[c], gaps(n)),
        employment=_text(EMPLOYMENT, sim.employment[c], gaps(n)),
    )
    enrollments = dict(
        episode_id=episode_id,
        client_id=client_id.take(pa.array(np.searchsorted(c, e["client"]))),
        site=_text(SITES, e["site"]),
        level_of_care=_text(LEVELS, e["level"]),
        admit_date=_dates(e["admit"]),
        discharge_date=_dates(e["disch"]),
        discharge_reason=_text(DISCHARGE_REASONS, e["reason"]),
        payer=_text(PAYERS, e["payer"], gaps(ne, 0.01)),
        track=_text(TRACKS, e["track"], gaps(ne, 0.01)),
        asam_level=_text([ASAM[level] for level in LEVELS], e["level"], gaps(ne, 0.01)),
    )
    attendance = dict(
        session_id=_ids("S", counts["attendance"], ns, 10),
        episode_id=episode_id.take(pa.array(s["episode"])),
        session_date=_dates(s["day"]),
        session_type=_text(SESSION_TYPES, s["type"]),
        status=_text(STATUSES, s["status"]),
        duration_minutes=pa.array(s["minutes"], mask=gaps(ns, 0.01)),
    )
    src, to_level, referred = (np.concatenate(x) for x in zip(*sim.refs))
    arrived = np.full(len(src), -1, np.int64)
    for rows, eps in sim.links:
        arrived[rows] = eps
    # Referrals from dropped episodes go too; an arrival always follows its (kept) referral.
    kept = np.flatnonzero(sim.rank[src] >= 0)
    order = kept[np.argsort(sim.rank[src[kept]], kind="stable")]
    arrived = np.where(arrived >= 0, sim.rank[arrived], -1)[order]
    transitions = dict(
        transition_id=_ids("T", counts["transitions"], len(order), 8),
        from_episode_id=episode_id.take(pa.array(sim.rank[src[order]])),
        referral_date=_dates(referred[order]),
        to_level_of_care=_text(LEVELS, to_level[order]),
        to_episode_id=episode_id.take(pa.array(arrived, mask=arrived < 0)),
    )
    columns = {"clients": clients, "enrollments": enrollments, "attendance": attendance, "transitions": transitions}
    return {name: pa.Table.from_pydict(columns[name], schema=schema) for name, schema in SCHEMAS.items()}


def generate(
    out_dir,
    clients: int = 5000,
    seed: int = 42,
    fmt: str = "parquet",
    through: datetime.date = date(2025, 10, 31),
    chunk_clients: int = 50_000,
    progress=None,
) -> dict[str, int]:
    """Write the four tables to out_dir; return row counts by table."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    if clients < 0 or chunk_clients < 1:
        raise ValueError("clients must be >= 0 and chunk_clients >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    month = through.year * 12 + through.month - ADMISSION_MONTHS
    start = date(month // 12, month % 12 + 1, 1)
    counts = dict.fromkeys(SCHEMAS, 0)
    width, chunks = max(7, len(str(clients))), -(-clients // chunk_clients)
    paths = {name: out / f"{name}.{fmt}" for name in SCHEMAS}
    # Written beside the targets and swapped in at the end, so no reader sees a half-written file.
    temps = {name: path.with_name(path.name + ".tmp") for name, path in paths.items()}
    writers = {
        name: pq.ParquetWriter(temps[name], schema, compression="zstd")
        if fmt == "parquet"
        else pacsv.CSVWriter(temps[name], schema, write_options=pacsv.WriteOptions(quoting_style="needed"))
        for name, schema in SCHEMAS.items()
    }
    try:
        for i in range(chunks):
            n = min(chunk_clients, clients - i * chunk_clients)
            tables = _chunk(np.random.default_rng([seed, i]), n, i * chunk_clients, counts, start, through, width)
            for name, table in tables.items():
                writers[name].write_table(table)
                counts[name] += table.num_rows
            if progress is not None:
                progress((i + 1) / chunks, f"{i * chunk_clients + n:,} of {clients:,} clients")
    except BaseException:
        for name, writer in writers.items():
            writer.close()
            temps[name].unlink(missing_ok=True)
        raise
    other = "csv" if fmt == "parquet" else "parquet"
    for name, writer in writers.items():
        writer.close()
        os.replace(temps[name], paths[name])
        # The loader refuses a folder holding both formats of a table.
        (out / f"{name}.{other}").unlink(missing_ok=True)
    demo_annotations.write(out, fmt, start, through, SITES)  # a few program events, the optional fifth extract
    return counts
