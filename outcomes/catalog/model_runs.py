"""A `model:` query's post-step output (and its suppressed table per site scope), kept per published load and
per all-site argument values.

A model is fitted over every site (see runner._run_model), so the sites filter and the user's scope do not
change it: a director changing sites, or a second user of the same load, reuses the fit instead of pulling
every eligible episode again. The key names the load by its load record (data-through date, load time to the
microsecond, source), so a reload never reuses an older load's fit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from outcomes.measures import models

_MAX = 64  # outputs are one row per site plus a few small tables
_kept: OrderedDict = OrderedDict()
_lock = threading.Lock()
_computing: dict = {}  # key -> Event, so threads asking for the same fit wait for one fit


def _frozen(value):
    """A hashable stand-in for parameter values: dicts and lists become sorted tuples."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def load_identity(con) -> tuple:
    """(data_through, loaded_at, source_folder) of the database `con` shows."""
    cur = con.cursor()
    try:
        return tuple(cur.execute("select data_through, loaded_at, source_folder from load_info").fetchone())
    finally:
        cur.close()


def output(con, query, values: dict, execute) -> tuple[models.Output, tuple]:
    """(the post-step's Output for `values` (sites already left out), its key): kept, or `execute(con, sql,
    values)`'s rows fitted now. Raises what `execute` raises (time limit, bad parameters); nothing is kept then."""
    key = (load_identity(con), query.sql, query.model, _frozen(values))

    def fitted() -> models.Output:
        rows = execute(con, query.sql, values)
        return models.get(query.model)(rows, values)

    return kept(key, fitted), key


def kept(key, make):
    """make()'s value, kept under `key` (hashable): one make() per key however many threads ask at once."""
    while True:
        with _lock:
            if key in _kept:
                _kept.move_to_end(key)
                return _kept[key]
            waiting = _computing.get(key)
            if waiting is None:
                _computing[key] = threading.Event()
                break
        waiting.wait()  # another thread fits the same thing; take its result (or fit here if it failed)
    try:
        out = make()
        with _lock:
            _kept[key] = out
            while len(_kept) > _MAX:
                _kept.popitem(last=False)
        return out
    finally:
        with _lock:
            _computing.pop(key).set()


def clear() -> None:
    """Forget every kept output (tests that time or count fits)."""
    with _lock:
        _kept.clear()
