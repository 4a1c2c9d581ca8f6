"""Query-overlap control: no view whose client-group filters leave out 1 to 10 clients.

Two views that differ by one filter give, subtracted, the clients between them: `population` for one site with
every age band (652) less the same with every band but `unknown` (643) tells that 9 clients of that site have
an unknown age. So a view is refused when dropping one of its active filters (a client-group filter, or a site
list narrower than the user's sites), or all of them at once, would add 1 to 10 clients to it.
"""

from __future__ import annotations

from outcomes.catalog.params import frozen
from outcomes.kept import Kept

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
_FOUND = Kept(512)  # the answer per view
_MAPS = Kept(16)  # per-site client bitmaps: ~125 kB each at a million clients


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
    key = (con, frozen({k: v for k, v in filters.items() if v is not None}), scope, start, end, _tuple(tracks))

    def found() -> list[str]:
        counts = _counts(con, filters, wider, active, start, end, tracks)
        view = counts["view"]
        out = [n for n in active if LOW <= counts[n] - view <= HIGH]
        if not out and len(active) > 1 and LOW <= counts["all"] - view <= HIGH:
            out = active
        return out

    # a page starts its queries together, each checking the same view: one count, the others wait for it
    return _FOUND.get(key, found)


def clear() -> None:
    """Forget every kept count (a benchmark's cold start)."""
    _FOUND.clear()
    _MAPS.clear()


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
    """Distinct clients of the view, of the view without each active filter, and without all of them: unions
    of the per-site client sets of `_site_maps`, so views that differ only in their sites share one scan."""
    others = [n for n in active if n != "sites"]
    maps = _site_maps(con, filters, others, start, end, tracks)

    def clients(without: set) -> int:
        sites = wider["sites"] if "sites" in without else filters.get("sites")
        union = 0
        for site in maps if sites is None else sites:
            union |= maps.get(site, {}).get(frozenset(without - {"sites"}), 0)
        return union.bit_count()

    return {"view": clients(set())} | {n: clients({n}) for n in active} | {"all": clients(set(active))}


def _site_maps(con, filters: dict, others: list[str], start, end, tracks) -> dict[str, dict[frozenset, int]]:
    """For each site, the client keys (bit k of an int for client_key k, keys being dense 1..N as in
    queries/population.sql) of the episodes `population` counts (in care within start..end, of the given
    tracks) that pass every client-group filter but those named in each of: no set, each one of `others`,
    all of `others`. One scan of episodes, kept for the views that differ from this one only in their sites."""
    rest = {n: filters[n] for n in COLUMNS if n != "sites" and filters.get(n) is not None}
    key = (con, frozen(rest), frozenset(others), start, end, _tuple(tracks))
    return _MAPS.get(key, lambda: _scan(con, rest, others, start, end, tracks))


def _scan(con, rest: dict, others: list[str], start, end, tracks) -> dict[str, dict[frozenset, int]]:
    params: dict = {"start": start, "end": end, "tracks": list(tracks) if tracks else None}
    conds = {}
    for name, value in rest.items():
        col = COLUMNS[name]
        params[name] = value if name == "co_occurring" else list(value)
        conds[name] = f"{col} = ${name}" if name == "co_occurring" else f"list_contains(${name}, {col})"
    leaving = [frozenset(), *(frozenset([n]) for n in others), frozenset(others)]
    leaving = list(dict.fromkeys(leaving))  # one filter of one: leaving it out is leaving them all out
    columns = ",\n".join(
        f"bitstring_agg(client_key) filter (where {' and '.join(c for n, c in conds.items() if n not in out) or 'true'})"
        f"::blob as m{i}"
        for i, out in enumerate(leaving)
    )
    # bitstring_agg: ~10x faster than count(distinct) at a million clients; every bitmap spans the same keys
    # (the column's min to max), so unions line up
    sql = f"""
        select site, {columns}
        from episodes
        where ($start is null or discharge_date is null or discharge_date >= $start)
            and ($end is null or admit_date <= $end)
            and ($tracks is null or list_contains($tracks, track))
        group by site
    """
    cur = con.cursor()
    try:
        rows = cur.execute(sql, params).fetchall()
    finally:
        cur.close()
    return {
        site: {out: int.from_bytes(m, "big") if m is not None else 0 for out, m in zip(leaving, maps)}
        for site, *maps in rows
    }
