"""The signal rules (outcomes.measures.signals) run over the catalog's series for views of sites, from
suppressed results only: each selected site, and the sites together."""

from __future__ import annotations

import contextvars
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pandas as pd

from outcomes.catalog import runner
from outcomes.catalog.query import Query, load_catalog
from outcomes.measures.signals import SERIES, Analysis, Series, Signal, analyse, series_rows
from outcomes.privacy import overlap

POPULATION = "population"
MIN_CLIENTS = 11  # as on screen: a view of fewer clients shows nothing (see web.queries.require_population)
SCAN_THREADS = 4  # queries of a scan run at once: enough to keep two cores busy while Python reads results
# queries of a scan run at once on this thread (a background thread that should take one core at most sets 1)
THREADS: contextvars.ContextVar[int] = contextvars.ContextVar("scan_threads", default=SCAN_THREADS)


def sites_of(con) -> list[str]:
    """Every site in the loaded data, in name order."""
    cur = con.cursor()
    try:
        return [
            r[0]
            for r in cur.execute("select value from filter_options where filter = 'site' order by value").fetchall()
        ]
    finally:
        cur.close()


def population_ok(con, catalog: dict[str, Query], sites: list[str] | None, scope=None) -> bool:
    """Whether a view of these sites holds at least MIN_CLIENTS clients and leaves out no 1 to 10 of a wider one
    (outcomes.privacy.overlap): the screen shows nothing otherwise."""
    try:
        result = runner.run(con, catalog[POPULATION], {"sites": sites} if sites else {}, scope=scope)
    except overlap.Differencing:
        return False
    n = result.data["clients"].iloc[0] if len(result.data) else 0
    return not pd.isna(n) and int(n) >= MIN_CLIENTS


def analyse_series(
    con,
    series: Series,
    sites: list[str] | None = None,
    scope=None,
    catalog: dict[str, Query] | None = None,
    site_label: str = "",
    results: dict | None = None,
) -> tuple[pd.DataFrame, Analysis]:
    """Run one series' query (suppressed, limited to `sites` within `scope`) and apply the rules to it.
    `results` keeps query results by query, parameters and sites, for series that share a query."""
    catalog = catalog or load_catalog()
    given, key = _given(series, sites, scope)
    if results is not None and key in results:
        data = results[key]
    else:
        data = runner.run(con, catalog[series.query], given, scope=scope).data
        if results is not None:
            results[key] = data
    rows = series_rows(series, data)
    return data, analyse(
        rows["month"], rows["events"], rows["n"], measure=series.key, label=series.label, site=site_label
    )


def _given(series: Series, sites: list[str] | None, scope) -> tuple[dict, tuple]:
    """(the values a series' query runs with for `sites`, the key of its result among a scan's results)."""
    given = dict(series.params) | ({"sites": list(sites)} if sites else {})
    return given, (series.query, repr(sorted(given.items())), repr(scope))


def views(con, sites: list[str] | None = None, scope=None) -> list[tuple[str, list[str] | None]]:
    """The views scanned: (site label, sites) for each selected site and, when there are several, all of them
    together (label ''). `sites` None: every site within `scope`."""
    chosen = list(sites) if sites else [s for s in sites_of(con) if scope is None or s in scope]
    if scope is not None:
        chosen = [s for s in chosen if s in scope]
    out = [(s, [s]) for s in chosen]
    if len(chosen) > 1 or (not sites and scope is None):
        out.append(("", None if not sites and scope is None else chosen))
    return out


def _data(con, query: Query, given: dict, scope) -> pd.DataFrame:
    return runner.run(con, query, given, scope=scope).data


def unkept(key, make):
    """A scan's `keep` that keeps nothing: make()."""
    return make()


def scan(
    con,
    sites: list[str] | None = None,
    scope=None,
    catalog: dict[str, Query] | None = None,
    series: tuple[Series, ...] = SERIES,
    keep=unkept,
) -> list[Signal]:
    """Every signal on every series, per site and for the sites together, from suppressed results only; a view
    of fewer than MIN_CLIENTS clients is skipped, as the screen would show it nothing. keep(key, make) gives
    each view's population check and query result: make()'s, or one kept for the same key, view and `scope`
    from an earlier scan of the same data (a view of one site is in every scan of sites that hold it)."""
    catalog = catalog or load_catalog()
    scanned = views(con, sites, scope)
    # every view's population check and query at once (DuckDB runs them without the GIL); a view that fails
    # its check is skipped as before, its results unread
    with ThreadPoolExecutor(max_workers=THREADS.get()) as pool:
        ok = [
            pool.submit(
                keep, (POPULATION, repr(chosen), repr(scope)), partial(population_ok, con, catalog, chosen, scope)
            )
            for _, chosen in scanned
        ]
        runs: dict = {}
        for _, chosen in scanned:
            for s in series:
                given, key = _given(s, chosen, scope)
                if key not in runs:
                    runs[key] = pool.submit(keep, key, partial(_data, con, catalog[s.query], given, scope))
        found: list[Signal] = []
        for (label, chosen), passed in zip(scanned, ok):
            if not passed.result():
                continue
            results = {key: runs[key].result() for key in (_given(s, chosen, scope)[1] for s in series)}
            for s in series:
                found += analyse_series(con, s, chosen, scope, catalog, label, results)[1].signals
    return found


def current(signals: list[Signal], since: dt.date) -> list[Signal]:
    """The signals that reach into the month holding `since` or later: what is news for a period from then."""
    first = since.replace(day=1)
    return [s for s in signals if s.end_month >= first]


def table(signals: list[Signal]) -> pd.DataFrame:
    """One row per signal: measure, site, rule, start_month, end_month, detail."""
    return pd.DataFrame(
        {
            "measure": [s.measure for s in signals],
            "site": [s.site for s in signals],
            "rule": [s.rule for s in signals],
            "start_month": [s.start_month.isoformat() for s in signals],
            "end_month": [s.end_month.isoformat() for s in signals],
            "detail": [s.detail for s in signals],
        },
        columns=["measure", "site", "rule", "start_month", "end_month", "detail"],
    )
