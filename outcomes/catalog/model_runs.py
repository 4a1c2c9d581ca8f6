"""A `model:` query's post-step output (and its suppressed table per site scope), kept per published load and
per all-site argument values.

A model is fitted over every site (see runner._run_model), so the sites filter and the user's scope do not
change it: a director changing sites, or a second user of the same load, reuses the fit instead of pulling
every eligible episode again. The key names the load by its load record (data-through date, load time to the
microsecond, source), so a reload never reuses an older load's fit.
"""

from __future__ import annotations

from outcomes.catalog import model_store
from outcomes.kept import Kept
from outcomes.measures import models

_kept = Kept(64)  # outputs are one row per site plus a few small tables


def load_identity(con) -> tuple:
    """(data_through, loaded_at, source_folder) of the database `con` shows."""
    cur = con.cursor()
    try:
        return tuple(cur.execute("select data_through, loaded_at, source_folder from load_info").fetchone())
    finally:
        cur.close()


def output(con, query, values: dict, execute) -> tuple[models.Output, tuple]:
    """(the post-step's Output for `values` (sites already left out), its key): kept, or `execute(con, sql,
    values)`'s rows fitted now (or the load's fit: outcomes.catalog.model_store). Raises what `execute` raises
    (time limit, bad parameters); nothing is kept then."""
    key = (load_identity(con), query.sql, query.model, model_store.frozen_values(values))

    def fitted() -> models.Output:
        stored = model_store.read(con, model_store.key(query, values))  # fitted by the load
        if stored is not None:
            return stored
        rows = execute(con, query.sql, values)
        return models.get(query.model)(rows, values)

    return kept(key, fitted), key


def kept(key, make):
    """make()'s value, kept under `key` (hashable): one make() per key however many threads ask at once."""
    return _kept.get(key, make)


def clear() -> None:
    """Forget every kept output (tests that time or count fits)."""
    _kept.clear()
