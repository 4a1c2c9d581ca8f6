"""The global sidebar filters, and the parameters a query receives by name alone ("magic" parameters).

A query does not declare these in its header: using `$filters` (the sites and client-group filters as one
struct, for the `filtered(table, $filters)` macro), `$tracks`, `$start` or `$end` in its SQL is enough.
"""

from __future__ import annotations

from outcomes.catalog.params import Param

GLOBAL: dict[str, Param] = {
    p.name: p
    for p in (
        Param("start", "date", None, "From", filter=True),
        Param("end", "date", None, "To", filter=True),
        Param("sites", "list", None, "Sites", options="site", filter=True),
        Param("payers", "list", None, "Payer", options="payer", filter=True),
        Param("genders", "list", None, "Gender", options="gender", filter=True),
        Param("age_bands", "list", None, "Age band at admission", options="age_band", filter=True),
        Param("substances", "list", None, "Primary substance", options="primary_substance", filter=True),
        Param("co_occurring", "bool", None, "Co-occurring mental health", filter=True),
        Param("living", "list", None, "Living situation", options="living_situation", filter=True),
        Param("employment", "list", None, "Employment", options="employment", filter=True),
        Param("tracks", "list", None, "IOP track", options="track", filter=True),
    )
}

# The members of `$filters`: the sites and the client group, the same for every query that reads episodes.
CLIENT = ("sites", "payers", "genders", "age_bands", "substances", "co_occurring", "living", "employment")
FILTERS = Param("filters", "filters", None, "Sites and client group", filter=True)

# Names a query's SQL may use without declaring them.
MAGIC: dict[str, Param] = {"filters": FILTERS} | {n: GLOBAL[n] for n in ("start", "end", "tracks")}


def struct(given: dict) -> dict:
    """The value of `$filters` from the individual filter values in `given` (missing ones: no limit)."""
    return {name: GLOBAL[name].coerce(given.get(name)) for name in CLIENT}
