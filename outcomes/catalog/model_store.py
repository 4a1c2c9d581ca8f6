"""`model:` outputs fitted at load time and kept in the database, for every measure's default view.

At a million clients a case-mix fit takes seconds; made once by the load, the first visit after a server start,
a digest run and a PDF read it instead of fitting. An output is found by a key over the query's SQL, its model,
the argument values and the post-step's code (its module, models.py and the project modules they import), so an
edited query, a changed default or a changed model fits afresh instead of reading an output it would not make.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import io
import json
import re
from pathlib import Path

import pandas as pd

from outcomes.measures import models

TABLE = "model_outputs"


@functools.cache
def _code(model: str) -> str:
    """A digest of the post-step's code: its module, outcomes/measures/models.py, and the project modules
    either imports (a change elsewhere, say to a chart, keeps the fits)."""
    from outcomes.paths import ROOT

    module = importlib.import_module(models.REGISTRY[model].split(":")[0])
    files = {Path(models.__file__).resolve(), Path(module.__file__).resolve()}
    for path in list(files):
        for name in re.findall(r"^from (outcomes(?:\.\w+)+) import", path.read_text(), re.M):
            found = importlib.util.find_spec(name)
            if found is not None and found.origin:
                files.add(Path(found.origin).resolve())
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def frozen_values(value):
    """A hashable stand-in for parameter values: dicts and lists become sorted tuples."""
    if isinstance(value, dict):
        return tuple(sorted((k, frozen_values(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(frozen_values(v) for v in value)
    return value


def key(query, values: dict) -> str:
    """The key of the output of `query` for `values` (as runner passes them to the post-step)."""
    text = json.dumps([query.sql, query.model, repr(frozen_values(values)), _code(query.model)])
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(catalog: dict) -> str:
    """What the load's fits depend on besides the data: every `model:` query's SQL and model, and the code."""
    text = json.dumps(sorted([q.sql, q.model, _code(q.model)] for q in catalog.values() if q.model))
    return hashlib.sha256(text.encode()).hexdigest()


def default_views(catalog: dict) -> list[tuple]:
    """(query, given) for every `model:` query's default view, one per choice of its `measure`."""
    out = []
    for query in catalog.values():
        if not query.model:
            continue
        measure = query.params.get("measure")
        for value in getattr(measure, "choices", None) or [None]:
            out.append((query, {} if value is None else {"measure": value}))
    return out


def _parquet(frame: pd.DataFrame) -> tuple[str, bytes]:
    """(its column types, the frame as Parquet): Parquet reads text columns back as strings, not objects."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return json.dumps({c: str(t) for c, t in frame.dtypes.items()}), buffer.getvalue()


def _frame(types: str, data: bytes) -> pd.DataFrame:
    frame = pd.read_parquet(io.BytesIO(data))
    wanted = {c: t for c, t in json.loads(types).items() if str(frame[c].dtype) != t}
    return frame.astype(wanted) if wanted else frame


def _plain(value):
    """numpy scalars as Python numbers, for JSON."""
    return value.item() if hasattr(value, "item") else str(value)


def save(con, key_: str, out: models.Output) -> None:
    """Write `out` under `key_` into the database being built (`con` writable)."""
    con.execute(
        f"create table if not exists {TABLE} "
        "(key varchar, part varchar, follows varchar, meta json, types json, frame blob)"
    )
    meta = {
        "notes": list(out.notes),
        "total": None if out.total is None else vars(out.total),
    }
    rows = [(key_, "", None, json.dumps(meta, default=_plain), *_parquet(out.table))]
    rows += [(key_, name, d.follows, None, *_parquet(d.frame)) for name, d in out.details.items()]
    con.executemany(f"insert into {TABLE} values (?, ?, ?, ?, ?, ?)", rows)


def read(con, key_: str) -> models.Output | None:
    """The output kept under `key_`, or None (none kept, or a database loaded before outputs were kept)."""
    cur = con.cursor()
    try:
        known = cur.execute(
            "select count(*) from duckdb_tables() where table_name = $t and schema_name = 'main'", {"t": TABLE}
        ).fetchone()[0]
        if not known:
            return None
        rows = cur.execute(
            f"select part, follows, meta, types, frame from {TABLE} where key = $k order by part", {"k": key_}
        ).fetchall()
    finally:
        cur.close()
    if not rows:
        return None
    frames = {part: (follows, meta, _frame(types, frame)) for part, follows, meta, types, frame in rows}
    _, meta, table = frames.pop("")
    meta = json.loads(meta)
    total = meta["total"]
    return models.Output(
        table,
        list(meta["notes"]),
        {name: models.Detail(frame, follows) for name, (follows, _, frame) in frames.items()},
        None if total is None else models.Total(**total),
    )


def fit_defaults(con, catalog: dict, data_through) -> int:
    """Fit every default view (`default_views`) on the database being built and keep each output; returns how
    many were kept. A view whose fit fails is left to be fitted when asked for."""
    import logging

    from outcomes.catalog import runner

    kept = 0
    for query, given in default_views(catalog):
        values = runner.model_values(runner.apply_scope(query, runner.bind(query, given, data_through), None))
        try:
            rows = runner.model_rows(con, query.sql, values, timeout=None)
            out = models.get(query.model)(rows, values)
        except Exception:
            logging.getLogger(__name__).warning("load: %s %s not fitted", query.name, given, exc_info=True)
            continue
        save(con, key(query, values), out)
        kept += 1
    return kept
