"""Query-overlap control: no view whose client-group filters leave out 1 to 10 clients.

Two views that differ by one filter give, subtracted, the clients between them: `population` for one site with
every age band (652) less the same with every band but `unknown` (643) tells that 9 clients of that site have
an unknown age. So a view is refused when dropping one of its active filters (a client-group filter, or a site
list narrower than the user's sites), or all of them at once, would add 1 to 10 clients to it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from outcomes.catalog.params import frozen

# the members of $filters and the episode columns they match (as the `filtered` macro does)
COLUMNS = {
    "sites": "site",
    "payers": "payer",
    "genders": "gender",
    "age_bands": "age_band",
    "substances": "primary_substance",
    "co_occurring": "co_occurring_mh",
    "living": "living_situation",
    "employment": "employment",
}
LOW, HIGH = 1, 10
LABELS = {
    "sites": "site",
    "payers": "payer",
    "genders": "gender",
    "age_bands": "age band",
    "substances": "primary substance",
    "co_occurring": "co-occurring mental health",
    "living": "living situation",
    "employment": "employment",
}
_CACHE: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
_COUNTING: dict = {}  # key -> Event set when the count for that key is done
_MAX = 512


class Differencing(ValueError):
    """The view leaves out 1 to 10 clients of the view without one of its filters: it shows nothing."""


def message(names: list[str]) -> str:
    said = ", ".join(LABELS[n] for n in names)
    return (
        f"Nothing to show: the {said} filter leaves out between 1 and 10 clients of this view, so comparing it "
        "with the wider view would give away a small number. Widen or clear that filter."
    )


def check(con, filters: dict, scope=None, start=None, end=None, tracks=None) -> None:
    """Raise Differencing when the view of `filters` (within `scope`, the user's sites; None: all) is 1 to 10
    clients short of a view without one of its active filters, or without all of them."""
    names = leaks(con, filters, scope, start, end, tracks)
    if names:
        raise Differencing(message(names))


def leaks(con, filters: dict, scope=None, start=None, end=None, tracks=None) -> list[str]:
    """The active filters whose dropping adds 1 to 10 clients to the view ("all" when only dropping all does)."""
    wider = _wider(filters, scope)
    active = [n for n in COLUMNS if n in wider]
    if not active:
        return []
    key = (id(con), frozen({k: v for k, v in filters.items() if v is not None}), scope, start, end, _tuple(tracks))
    while True:
        with _LOCK:
            hit = _CACHE.get(key)
            if hit is not None and hit[0] is con:
                _CACHE.move_to_end(key)
                return hit[1]
            waiting = _COUNTING.get(key)
            if waiting is None:
                _COUNTING[key] = threading.Event()
                break
        # a page starts its queries together, each checking the same view: one count, the others wait for it
        waiting.wait()
    try:
        counts = _counts(con, filters, wider, active, start, end, tracks)
        view = counts["view"]
        out = [n for n in active if LOW <= counts[n] - view <= HIGH]
        if not out and len(active) > 1 and LOW <= counts["all"] - view <= HIGH:
            out = active
        with _LOCK:
            _CACHE[key] = (con, out)
            while len(_CACHE) > _MAX:
                _CACHE.popitem(last=False)
        return out
    finally:
        with _LOCK:
            _COUNTING.pop(key).set()


def clear() -> None:
    """Forget every kept count (a benchmark's cold start)."""
    with _LOCK:
        _CACHE.clear()


def _tuple(v):
    return tuple(v) if isinstance(v, list) else v


def _wider(filters: dict, scope) -> dict:
    """For each active filter, the value it takes in the view without it: sites widen to the user's sites,
    every other filter to no limit."""
    out = {}
    for name in COLUMNS:
        value = filters.get(name)
        if value is None:
            continue
        if name == "sites":
            every = list(scope) if scope is not None else None
            if every is not None and set(value) >= set(every):
                continue
            out[name] = every
        else:
            out[name] = None
    return out


def _counts(con, filters: dict, wider: dict, active: list[str], start, end, tracks) -> dict[str, int]:
    """Distinct clients of the view, of the view without each active filter, and without all of them, in one
    scan of episodes (the episodes `population` counts: in care within start..end, of the given tracks)."""
    params: dict = {"start": start, "end": end, "tracks": list(tracks) if tracks else None}
    conds = {}
    for name, col in COLUMNS.items():
        value = filters.get(name)
        if value is None:
            continue
        params[name] = value if name == "co_occurring" else list(value)
        test = f"{col} = ${name}" if name == "co_occurring" else f"list_contains(${name}, {col})"
        conds[name] = test
        if name in wider and wider[name] is not None:
            params[f"{name}_wide"] = list(wider[name])
            conds[f"{name}_wide"] = f"list_contains(${name}_wide, {col})"

    def where(without: set) -> str:
        parts = [c for n, c in conds.items() if not n.endswith("_wide") and n not in without]
        parts += [conds[f"{n}_wide"] for n in without if f"{n}_wide" in conds]
        return " and ".join(parts) or "true"

    views = {"view": where(set())} | {n: where({n}) for n in active} | {"all": where(set(active))}
    # a bitmap of client keys per view (keys are dense 1..N, as in queries/population.sql): ~10x faster than
    # count(distinct) at a million clients
    select = ",\n".join(
        f"coalesce(bit_count(bitstring_agg(client_key) filter (where {w})), 0) as {n}" for n, w in views.items()
    )
    sql = f"""
        select {select}
        from episodes
        where ($start is null or discharge_date is null or discharge_date >= $start)
            and ($end is null or admit_date <= $end)
            and ($tracks is null or list_contains($tracks, track))
    """
    cur = con.cursor()
    try:
        row = cur.execute(sql, params).fetchone()
    finally:
        cur.close()
    return dict(zip(views, (int(x) for x in row)))
