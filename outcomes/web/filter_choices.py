"""What the sidebar's client-group filters offer: the values held at the user's sites, small ones as "Other"."""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from outcomes.catalog import runner
from outcomes.ingest import db
from outcomes.web.context import catalog
from outcomes.web.database import root_connection

OTHER = "Other"
MIN_CLIENTS = 11  # a value held by fewer clients is offered only within OTHER
QUERY = "filter_values"


class Choices(NamedTuple):
    offered: list[str]  # the values to list, OTHER last when some are small
    small: list[str]  # the values OTHER stands for


@st.cache_data(max_entries=64, show_spinner=False)
def choices(version: db.DataVersion, scope: tuple | None) -> dict[str, Choices]:
    """Per filter option name (payer, age_band, ...): the values held at the sites of `scope` (None: every
    site). The counts are read raw, to sort values into shown and small, and never leave this function."""
    held = runner.run(root_connection(version), catalog()[QUERY], {}, raw=True, scope=scope).data
    out = {}
    for name, rows in held.groupby("filter", sort=True):
        big = rows.loc[rows["clients"] >= MIN_CLIENTS, "value"].astype(str).tolist()
        small = rows.loc[rows["clients"] < MIN_CLIENTS, "value"].astype(str).tolist()
        other = OTHER if OTHER.lower() not in {v.lower() for v in big} else f"{OTHER} (small groups)"
        out[str(name)] = Choices(big + ([other] if small else []), small)
    return out


def values(picked: list[str], options: Choices) -> list[str]:
    """The filter values a selection stands for: OTHER becomes the small values it groups."""
    other = options.offered[-1] if options.small else None
    out = []
    for v in picked:
        out += options.small if v == other else [v]
    return list(dict.fromkeys(out))
