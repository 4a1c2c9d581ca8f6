"""Run catalog queries: bind parameters, enforce a time limit and row cap, suppress small cells."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from outcomes.catalog import filters, grain
from outcomes.catalog.query import Query
from outcomes.kept import later
from outcomes.privacy import access, categories, overlap
from outcomes.privacy import suppress as sup

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ROWS = 10_000


class QueryTimeout(Exception):
    """The query ran past its time limit and was stopped."""


class UnknownParameter(ValueError):
    """A value was given for a parameter the query does not declare."""


class ScopeError(PermissionError):
    """A query that cannot be limited to the user's sites was refused."""


@dataclass
class Result:
    data: pd.DataFrame  # suppressed unless raw
    mask: pd.DataFrame  # cells hidden by suppression
    params: dict
    truncated: bool
    seconds: float
    raw: bool
    reasons: pd.DataFrame | None = None  # why each hidden cell is hidden (suppress.SMALL / COMPLEMENT), else ""
    notes: list[str] = field(default_factory=list)  # from a model post-step, e.g. whether its fit converged
    details: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # tables a post-step puts beside the result


def bind(query: Query, given: dict, data_through=None) -> dict:
    """Declared defaults overridden by `given` (strings or typed values), typed; unknown names are refused.

    `$filters` is made from the individual filter values in `given` (sites, payers, ...), or given whole."""
    unknown = sorted(n for n in given if not query.takes(n))
    if unknown:
        takes = [n for n in query.params if n != "filters"] + (
            list(filters.CLIENT) if "filters" in query.params else []
        )
        raise UnknownParameter(
            f"{query.name} has no parameter {', '.join(unknown)} (it takes {', '.join(takes) or 'none'})"
        )
    values = {}
    for name, p in query.params.items():
        if p.type == "filters":
            value = filters.struct(given.get("filters") or given)
        else:
            value = p.coerce(given[name]) if name in given else p.default
        if value == "data_through":
            value = data_through
        values[name] = value
    return values


def execute(
    con, sql: str, values: dict, timeout: float | None = DEFAULT_TIMEOUT, max_rows: int | None = None, arrow=False
):
    """Run one statement on a fresh cursor; returns (DataFrame, truncated). Stops it after `timeout` seconds.
    `arrow`: every row through Arrow (see model_rows)."""
    cur = con.cursor()
    timer = threading.Timer(timeout, cur.interrupt) if timeout else None
    try:
        if timer:
            timer.start()
        started = time.monotonic()
        try:
            if arrow:  # a relation: Arrow from an executed statement would copy its rows once more
                df, truncated = cur.sql(sql, params=values).to_arrow_table().to_pandas(), False
            elif max_rows is None:
                df, truncated = cur.execute(sql, values).df(), False
            else:
                rel = cur.execute(sql, values)
                rows = rel.fetchmany(max_rows + 1)
                cols = [d[0] for d in rel.description]
                truncated = len(rows) > max_rows
                df = pd.DataFrame.from_records(rows[:max_rows], columns=cols)
        except duckdb.InterruptException:
            raise QueryTimeout(
                f"query stopped after {time.monotonic() - started:.1f} s (limit {timeout:g} s)"
            ) from None
        return df, truncated
    finally:
        if timer:
            timer.cancel()
        cur.close()


def model_rows(con, sql: str, values: dict, timeout: float | None = DEFAULT_TIMEOUT) -> pd.DataFrame:
    """A `model:` query's rows for its post-step, through Arrow: the same frame as .df() gives for its text and
    integer columns, in a third of the time (tens of thousands of rows at a million clients)."""
    return execute(con, sql, values, timeout, None, arrow=True)[0]


def run(
    con,
    query: Query,
    given: dict | None = None,
    raw: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_rows: int | None = None,
    data_through=None,
    scope=None,
) -> Result:
    """Run a catalog query with its defaults overridden by `given`; suppressed unless `raw`.

    `scope` is the sites the user may see (None: every site): the sites of `$filters` are narrowed to it, and
    a query without `$filters` is refused unless its header declares it `site_free`. A suppressed run of a view
    whose filters leave out 1 to 10 clients raises overlap.Differencing (see outcomes.privacy.overlap).
    """
    if data_through is None and any(p.default == "data_through" for p in query.params.values()):
        data_through = data_through_of(con)
    values = apply_scope(query, bind(query, given or {}, data_through), scope)
    started = time.monotonic()
    if not raw and "filters" in values:
        f = values["filters"]
        overlap.check(con, f, scope, values.get("start"), values.get("end"), values.get("tracks"))
    if query.model:
        return _run_model(con, query, values, raw, timeout, max_rows, scope, started)
    notes = []
    if values.get("grain") == grain.AUTO:
        at = lambda g: _once(con, query, values | {"grain": g}, False, timeout, max_rows)
        chosen, out = grain.choose(query, at, values)
        values = values | {"grain": chosen}
        notes = [n for n in [grain.note(query, chosen)] if n]
        if raw:
            out = _once(con, query, values, raw, timeout, max_rows)
    else:
        out = _once(con, query, values, raw, timeout, max_rows)
    df, mask, why, truncated, merged = out
    return Result(df, mask, values, truncated, time.monotonic() - started, raw, why, notes + merged)


def _once(con, query: Query, values: dict, raw: bool, timeout, max_rows) -> tuple:
    """(data, mask, reasons, truncated, notes) of one run of the query's SQL, suppressed unless `raw`; a
    suppressed run merges small categories first (`categories.merge`), and its notes say which."""
    df, truncated = execute(con, query.sql, values, timeout, max_rows)
    notes = []
    if raw:
        sup.roles(df, query.suppress)
        mask = pd.DataFrame(False, index=df.index, columns=df.columns)
        why = pd.DataFrame("", index=df.index, columns=df.columns, dtype=object)
    else:
        if query.suppress.get("other"):
            spec = query.suppress
            at = lambda d: sup.suppress_detail(d, spec)
            df, notes = categories.merge(df, spec, at, grain.drawn_rates(query, values), query.panel.get("rows"))
        df, mask, why = sup.suppress_detail(df, query.suppress)
    return df, mask, why, truncated, notes


def model_values(values: dict) -> dict:
    """A `model:` query's values as its SQL and post-step get them: every site (the sites asked for are picked
    from the output afterwards)."""
    return values | {"filters": values["filters"] | {"sites": None}}


def _run_model(con, query: Query, values: dict, raw: bool, timeout, max_rows, scope, started: float) -> Result:
    """A `model:` query: its SQL runs for every site, the post-step turns those rows into one row per site,
    and only the rows of the sites asked for (within `scope`) come out, suppressed unless `raw`. The SQL's
    rows never leave this function."""
    from outcomes.catalog import model_runs
    from outcomes.measures import models

    every_site = model_values(values)
    out, key = model_runs.output(con, query, every_site, lambda c, sql, v: model_rows(c, sql, v, timeout))

    def shown() -> tuple:
        """The table as the user's scope may see it, suppressed unless raw: the same for any sites asked."""
        table = out.table.reset_index(drop=True)
        seen = table if scope is None else table[table["site"].isin(scope)].reset_index(drop=True)
        if raw:
            sup.roles(seen, query.suppress)
            df, mask = seen, pd.DataFrame(False, index=seen.index, columns=seen.columns)
        else:
            df, mask = models.suppress_table(seen, query.suppress, out.total, every_site=len(seen) == len(table))
        return df, mask, sup.reasons(seen, mask, query.suppress)

    df, mask, why = model_runs.kept((key, scope, raw), shown)
    asked = values["filters"]["sites"]
    keep = df["site"].isin(asked) if asked is not None else pd.Series(True, index=df.index)
    df, mask, why = (x[keep].reset_index(drop=True) for x in (df, mask, why))
    truncated = max_rows is not None and len(df) > max_rows
    if truncated:
        df, mask, why = df.iloc[:max_rows], mask.iloc[:max_rows], why.iloc[:max_rows]

    def narrowed(detail: models.Detail) -> pd.DataFrame:
        """The detail's rows of the sites shown, hidden where its `follows` cell is."""
        frame = detail.frame
        if "site" in frame:
            frame = frame[frame["site"].isin(df["site"])].reset_index(drop=True)
            if detail.follows and not raw:
                hidden = frame["site"].isin(df.loc[mask[detail.follows], "site"])
                numbers = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
                frame = frame.astype({c: "float64" for c in numbers})
                frame.loc[hidden, numbers] = float("nan")
        return frame.copy()  # the kept output's own frames stay as they were

    details = later(out.details, narrowed)
    return Result(df, mask, values, truncated, time.monotonic() - started, raw, why, list(out.notes), details)


def apply_scope(query: Query, values: dict, scope) -> dict:
    """Bound values with the sites of `$filters` narrowed to `scope` (None: no limit); raises ScopeError when
    the query cannot be limited."""
    if scope is None:
        return values
    if "filters" not in query.params:
        if query.site_free:
            return values
        raise ScopeError(f"{query.name} takes no $filters, so it cannot be limited to your sites")
    narrowed = values["filters"] | {"sites": access.limit_sites(values["filters"]["sites"], tuple(scope))}
    return values | {"filters": narrowed}


def data_through_of(con):
    cur = con.cursor()
    try:
        return cur.execute("select data_through from load_info").fetchone()[0]
    finally:
        cur.close()
