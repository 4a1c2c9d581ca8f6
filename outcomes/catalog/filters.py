"""The global sidebar filters. A query receives one when its header declares `name: filter`."""

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
