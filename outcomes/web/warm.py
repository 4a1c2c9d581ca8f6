"""The case-mix fits of every measure's default view, made ready in the background when a data version is first
served: read from the database where the load kept them (outcomes.catalog.model_store), fitted where it did not
(a database loaded with `OUTCOMES_LOAD_FITS=0`, or a query edited since). At a million clients a fit takes
seconds, and a director opening Step-down after a restart or a reload should not wait for it.
`OUTCOMES_WARM_FITS=0` turns this off."""

from __future__ import annotations

import logging
import os
import threading

from outcomes.catalog import model_store, runner
from outcomes.catalog.query import load_catalog
from outcomes.ingest import db

_started: set = set()
_lock = threading.Lock()


def start(version: db.DataVersion) -> threading.Thread | None:
    """Start fitting `version`'s default views, once per version in this process; the thread, or None."""
    if os.environ.get("OUTCOMES_WARM_FITS", "1") == "0":
        return None
    with _lock:
        if version in _started:
            return None
        _started.add(version)
    thread = threading.Thread(target=_fit_defaults, args=(version,), daemon=True, name="warm-fits")
    thread.start()
    return thread


def _fit_defaults(version: db.DataVersion) -> None:
    try:  # below the pages' own work (Linux schedules each thread on its own)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass
    try:
        con = db.open_version(version)
    except db.NoDatabase:
        return
    try:
        for query, given in model_store.default_views(load_catalog()):
            runner.run(con, query, given, timeout=None)  # kept by outcomes.catalog.model_runs
    except Exception:  # a reload may take the file away mid-way; pages fit on demand then
        logging.getLogger(__name__).info("background case-mix fits stopped", exc_info=True)
    finally:
        con.close()
