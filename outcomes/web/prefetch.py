"""Neighbouring views, made ready while the server is idle: after a director page is drawn, its cached runs for
the other choices of the Sites filter.

Changing sites is the step a director takes most; at a million clients a page's queries take about half a
second of both cores. So once a page has been drawn and no page is being drawn anywhere in the process, one
background thread at a lower CPU priority, one query at a time, runs the same cached functions with the same arguments but other
sites: each site alone, each pair, ..., all sites (every choice when the user has up to MAX_SITES sites, else
each site alone and all together), and builds what the panels draw from those rows (figures, text
alternatives, the Overview's tiles: outcomes.web.reuse). A change of sites then finds its rows and figures
ready and only sends them. Results are the same cached runs a page would make (suppressed, keyed by data
version, values and the user's site scope), so nothing is shown that the page would not show; the population and overlap checks still run when a page
uses them. Work asked for by an older page run is dropped when a newer one asks. `OUTCOMES_PREFETCH=0` turns
this off.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from itertools import combinations

from outcomes.measures import signal_scan
from outcomes.web import context

MAX_SITES = 4  # every choice of up to 4 sites: 15 views
_NOTES = "prefetch"  # key of this run's notes in its context memo
_lock = threading.Condition()
_pending: list = []  # (function, args) still to run, oldest first
_drawing = 0  # page runs in progress in this process
_busy = False  # the worker is running one now
_done: dict = {}  # calls made (oldest first), not asked for again: their results are in Streamlit's caches
_DONE_MAX = 4096
_worker: threading.Thread | None = None


def enabled() -> bool:
    return os.environ.get("OUTCOMES_PREFETCH", "1") != "0"


@contextmanager
def drawing():
    """Around a page run: the worker waits while any page is being drawn."""
    global _drawing
    with _lock:
        _drawing += 1
    try:
        yield
    finally:
        with _lock:
            _drawing -= 1
            _lock.notify_all()


def site_choices(offered: list[str], chosen) -> list[tuple[str, ...] | None]:
    """The other Sites choices of a user offered `offered`: None (all) and site lists, sorted, nearest first
    (single sites, then pairs, ...); `chosen` (None or a list) left out."""
    offered = sorted(offered)
    if len(offered) <= MAX_SITES:
        sizes = range(1, len(offered))
    else:
        sizes = [1]
    out: list = [None] + [c for k in sizes for c in combinations(offered, k)]
    now = None if not chosen or set(chosen) >= set(offered) else tuple(sorted(chosen))
    return [c for c in out if c != now]


def note(make: Callable[[tuple[str, ...] | None], tuple[Callable, tuple]]) -> None:
    """Note, for this page run, how to make one of its cached calls for another site choice: make(choice)
    gives (function, args), choice None for all the user's sites."""
    context.current().memo.setdefault(_NOTES, []).append(make)


class Made:
    """A function for the worker to call, known by `key` (everything it builds from besides its arguments), not
    by identity: the same work asked for by the next page run is recognised as done."""

    def __init__(self, key, fn: Callable):
        self.key, self.fn = key, fn

    def __call__(self, *args):
        return self.fn(*args)

    def __eq__(self, other) -> bool:
        return isinstance(other, Made) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


def after_page(offered: list[str], chosen) -> None:
    """The page run has drawn: ask for its noted calls for every other site choice, nearest choices first."""
    makes = context.current().memo.get(_NOTES) or []
    if enabled() and makes:
        ask(list(dict.fromkeys(make(c) for c in site_choices(offered, chosen) for make in makes)))


def swap_sites(args: tuple, choice: tuple[str, ...] | None) -> tuple:
    """A cached run's arguments (name, frozen values, version, scope) with the sites filter set to `choice`."""
    name, items, version, scope = args
    values = {k: v for k, v in items if k != "sites"} | ({} if choice is None else {"sites": choice})
    return name, tuple(sorted(values.items())), version, scope


def ask(calls: list[tuple[Callable, tuple]]) -> None:
    """Run `calls` in the background when the process is idle, instead of any still waiting."""
    if not enabled() or not calls:
        return
    global _worker
    with _lock:
        calls = [c for c in calls if c not in _done]
        if not calls:
            return
        _pending[:] = calls
        if _worker is None or not _worker.is_alive():
            _worker = threading.Thread(target=_work, daemon=True, name="prefetch")
            _worker.start()
        _lock.notify_all()


def clear() -> None:
    """Forget what was made and drop what waits (with Streamlit's caches cleared: a benchmark's cold start)."""
    with _lock:
        _pending.clear()
        _done.clear()


@atexit.register
def _stop() -> None:
    """At exit, drop what waits and let a run in progress end: a thread torn down inside DuckDB aborts."""
    with _lock:
        _pending.clear()
    idle(10)


def idle(timeout: float = 60.0) -> bool:
    """Wait until nothing is waiting or running (benchmarks, tests); False if `timeout` passed first."""
    end = time.monotonic() + timeout
    with _lock:
        while _pending or _busy:
            left = end - time.monotonic()
            if left <= 0:
                return False
            _lock.wait(left)
    return True


def _work() -> None:
    global _busy
    try:  # below the pages' own work (Linux schedules each thread on its own)
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass
    signal_scan.THREADS.set(1)  # one query at a time: a page asked for meanwhile has the other core
    while True:
        with _lock:
            while not _pending or _drawing:
                _lock.wait(timeout=0.05 if _pending else None)
            call = _pending.pop(0)
            _busy = True
        try:
            call[0](*call[1])
        except Exception as exc:  # a view the checks refuse, a reload mid-way: the page sees it if it asks
            logging.getLogger(__name__).debug("prefetch %s: %s", call[1][0], exc)
        finally:
            with _lock:
                _done[call] = None
                while len(_done) > _DONE_MAX:
                    _done.pop(next(iter(_done)))
                _busy = False
                _lock.notify_all()
