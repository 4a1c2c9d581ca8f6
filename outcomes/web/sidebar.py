"""The global filters in the sidebar, bound to the page address, and their values for this run."""

from __future__ import annotations

import streamlit as st

from outcomes.catalog import filters
from outcomes.web.auth import current_user
from outcomes.web.database import data_version, info, options


def sidebar_filters() -> dict:
    """Render the global filters in the sidebar, bound to the URL; store and return their values."""
    user = current_user()
    st.session_state.pop("_data_version", None)
    if not user.authorised:
        return {}
    version = st.session_state["_data_version"] = data_version()  # one data version for the whole run
    opts = options(version)
    facts = info(version)
    with st.sidebar:
        st.caption(f"Data through **{facts['data_through']:%d %b %Y}**")
        values: dict = {}
        c1, c2 = st.columns(2)
        values["start"] = c1.date_input("From", value=None, key="start", bind="query-params", format="YYYY-MM-DD")
        values["end"] = c2.date_input("To", value=None, key="end", bind="query-params", format="YYYY-MM-DD")
        sites = [s for s in opts.get("site", []) if user.scope is None or s in user.scope]
        values["sites"] = st.multiselect("Sites", sites, key="sites", bind="query-params", placeholder="All sites")
        with st.expander("Client group", expanded=False):
            for name in ("payers", "genders", "age_bands", "substances", "living", "employment", "tracks"):
                p = filters.GLOBAL[name]
                values[name] = st.multiselect(p.label, opts.get(p.options, []), key=name, bind="query-params", placeholder="All")
            co = st.selectbox("Co-occurring mental health", ["any", "yes", "no"], key="co_occurring", bind="query-params")
            values["co_occurring"] = {"yes": True, "no": False}.get(co)
    values = {k: (v or None) if isinstance(v, list) else v for k, v in values.items()}
    st.session_state["_filters"] = values
    return values


def active_filters() -> dict:
    return st.session_state.get("_filters", {})


def filters_text() -> str:
    """The active filters in words, for captions and exported images."""
    parts = []
    for k, v in active_filters().items():
        if v is None:
            continue
        label = filters.GLOBAL[k].label
        parts.append(f"{label}: {', '.join(v) if isinstance(v, list) else ('yes' if v is True else 'no' if v is False else v)}")
    return "; ".join(parts) or "No filters (all data)"
