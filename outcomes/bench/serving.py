"""Serving times at scale: every catalog query through the runner, and every page through AppTest."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import statistics
import time
from itertools import combinations
from pathlib import Path

from outcomes.bench.machine import cpu_seconds
from outcomes.paths import ROOT

PAGES_DIR = ROOT / "pages"


def _timed(fn, runs: int) -> tuple[float, float, object]:
    """Median wall seconds and median CPU seconds (all threads) of `runs` calls after a warm-up call, and the
    last result. CPU time shows the work done when other processes share the cores."""
    result = fn()
    times, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), cpu_seconds()
        result = fn()
        times.append(time.perf_counter() - t)
        cpu.append(cpu_seconds() - c)
    return statistics.median(times), statistics.median(cpu), result


def typical_filters(con, query) -> dict:
    """One site and a six-month range (the six whole months before the data-through month), where declared."""
    from outcomes.catalog import runner

    cur = con.cursor()
    try:
        site = cur.execute("select min(value) from filter_options where filter = 'site'").fetchone()[0]
    finally:
        cur.close()
    through = runner.data_through_of(con)
    first = dt.date(through.year - (through.month <= 6), (through.month - 7) % 12 + 1, 1)
    last = dt.date(through.year, through.month, 1) - dt.timedelta(days=1)
    given = {"sites": [site], "start": first, "end": last}
    return {k: v for k, v in given.items() if query.takes(k)}


def bench_queries(db_path: Path, runs: int) -> list[dict]:
    """Median warm latency of every catalog query through the runner, with defaults and with typical filters."""
    from outcomes.catalog import runner
    from outcomes.catalog.query import load_catalog
    from outcomes.ingest import db

    con = db.connect(db_path)
    out = []
    try:
        for name, query in load_catalog().items():
            row = {"name": name}
            for label, given in (("default", {}), ("filtered", typical_filters(con, query))):
                try:
                    seconds, cpu, result = _timed(lambda: runner.run(con, query, given), runs)
                    if query.model:  # the timed runs reused the first run's fit: time fitting too
                        row[f"{label}_kept_fit_ms"] = round(seconds * 1000, 1)
                        seconds, cpu, result = _timed(lambda: _fitted(con, query, given), runs)
                    row[f"{label}_ms"] = round(seconds * 1000, 1)
                    row[f"{label}_cpu_ms"] = round(cpu * 1000, 1)
                    row[f"{label}_rows"] = len(result.data)
                except Exception as exc:  # a failing query is a finding, not a crash
                    row[f"{label}_error"] = str(exc).splitlines()[0][:200]
            row["filtered_params"] = {
                k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in typical_filters(con, query).items()
            }
            out.append(row)
    finally:
        con.close()
    return out


def _fitted(con, query, given):
    """runner.run with no kept fit to reuse (outcomes.catalog.model_runs)."""
    from outcomes.catalog import model_runs, runner

    model_runs.clear()
    return runner.run(con, query, given)


def bench_pages(db_path: Path, runs: int, timeout: float = 300) -> list[dict]:
    """Server time of AppTest runs for every page, medians of `runs`: first render (every cache empty), reruns after
    a change of the sidebar sites filter (each to a set of sites not shown before, nothing made ahead), cached
    reruns with nothing changed, and reruns after a change of sites once the page has been idle (the views made
    ahead, outcomes.web.prefetch; with how long that took)."""
    from streamlit.testing.v1 import AppTest

    from outcomes.ingest import db
    from outcomes.web import prefetch

    ahead_before = os.environ.get("OUTCOMES_PREFETCH")
    os.environ["OUTCOMES_PREFETCH"] = "0"

    os.environ["OUTCOMES_DB"] = str(db_path)
    con = db.connect(db_path)
    try:
        sites = [
            r[0] for r in con.execute("select value from filter_options where filter = 'site' order by 1").fetchall()
        ]
    finally:
        con.close()
    choices = [list(c) for k in range(1, len(sites) + 1) for c in combinations(sites, k)]
    out = []
    with compiled_once():  # a server compiles each script once
        for page in sorted(p.relative_to(ROOT).as_posix() for p in PAGES_DIR.glob("*.py")):
            row: dict = {"page": page}
            times = []
            for _ in range(max(1, runs)):  # each first render with every cache empty, as after a server start
                cold()
                at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
                at._bidi_component_manager = components()
                at.switch_page(page)
                t = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - t)
            row["first_ms"] = round(statistics.median(times) * 1000, 1)
            problems = [str(e.value)[:200] for e in list(at.exception) + list(at.error)]
            try:
                widget = at.multiselect(key="sites")
            except (KeyError, IndexError):
                widget = None
            if widget is not None:
                times = []
                for choice in choices[: max(1, runs)]:
                    widget.set_value(choice)
                    t = time.perf_counter()
                    at.run()
                    times.append(time.perf_counter() - t)
                    widget = at.multiselect(key="sites")
                    problems += [str(e.value)[:200] for e in list(at.exception) + list(at.error)]
                row["filter_change_ms"] = round(statistics.median(times) * 1000, 1)
                row["filter_changes"] = len(times)
            times = []
            for _ in range(max(1, runs)):
                t = time.perf_counter()
                at.run()
                times.append(time.perf_counter() - t)
            row["cached_ms"] = round(statistics.median(times) * 1000, 1)
            if widget is not None:
                cold()
                os.environ["OUTCOMES_PREFETCH"] = "1"
                at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
                at._bidi_component_manager = components()
                at.switch_page(page)
                at.run()
                times, waits = [], []
                for choice in choices[: max(1, runs)]:
                    t = time.perf_counter()
                    prefetch.idle(timeout)
                    waits.append(time.perf_counter() - t)
                    at.multiselect(key="sites").set_value(choice)
                    t = time.perf_counter()
                    at.run()
                    times.append(time.perf_counter() - t)
                    problems += [str(e.value)[:200] for e in list(at.exception) + list(at.error)]
                os.environ["OUTCOMES_PREFETCH"] = "0"
                row["filter_change_ahead_ms"] = round(statistics.median(times) * 1000, 1)
                row["ahead_seconds"] = round(waits[0], 2)  # from the first render drawn to every other site choice made
            row["problems"] = sorted(set(problems))
            out.append(row)
    cold()
    if ahead_before is None:
        os.environ.pop("OUTCOMES_PREFETCH", None)
    else:
        os.environ["OUTCOMES_PREFETCH"] = ahead_before
    return out


@functools.cache
def components():
    """Streamlit's custom-component registry, found once: a server scans the installed packages for components
    when it starts; a new AppTest does it on its first run (a quarter of a second here), which is not page time."""
    from streamlit.components.v2.component_manager import BidiComponentManager

    manager = BidiComponentManager()
    manager.discover_and_register_components(start_file_watching=False)
    return manager


@functools.cache
def script_cache():
    """The scripts compiled once, as a server compiles them: a server keeps one ScriptCache for its life, while
    AppTest makes a new one for every run (parsing and compiling app.py and the page again, 3-5 ms of each
    rerun at 1M, which is not page time). Emptied by cold()."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache

    return ScriptCache()


@contextlib.contextmanager
def compiled_once():
    """AppTest runs within use script_cache()."""
    from streamlit.testing.v1 import app_test, local_script_runner

    before = local_script_runner.ScriptCache, app_test.ScriptCache
    local_script_runner.ScriptCache = app_test.ScriptCache = script_cache
    try:
        yield
    finally:
        local_script_runner.ScriptCache, app_test.ScriptCache = before


def cold() -> None:
    """Empty every cache a server fills as it serves: Streamlit's, the kept model fits, overlap counts, the
    Overview's signal views and what was made ahead for other sites."""
    import streamlit as st

    from outcomes.catalog import model_runs
    from outcomes.privacy import overlap
    from outcomes.web import prefetch, signal_list

    prefetch.idle(600)  # nothing of the last page is still being made
    prefetch.clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    model_runs.clear()
    overlap.clear()
    signal_list.clear()
    script_cache().clear()
