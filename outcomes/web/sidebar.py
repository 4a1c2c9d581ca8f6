"""The global filters in the sidebar, bound to the page address, and their values for this run."""

from __future__ import annotations

import streamlit as st

from outcomes.catalog import filters
from outcomes.web import context
from outcomes.web.audit import log_once
from outcomes.web.database import info, options

CLIENT_GROUP = ("payers", "genders", "age_bands", "substances", "living", "employment", "tracks")


def draw() -> dict:
    """Draw the global filters in the sidebar, bound to the address; keep their values in the run's context."""
    run = context.current()
    if not run.user.authorised:
        return {}
    opts = options(run.version)
    facts = info(run.version)
    with st.sidebar:
        st.caption(f"Data through **{facts['data_through']:%d %b %Y}**")
        values: dict = {}
        c1, c2 = st.columns(2)
        values["start"] = c1.date_input("From", value=None, key="start", bind="query-params", format="YYYY-MM-DD")
        values["end"] = c2.date_input("To", value=None, key="end", bind="query-params", format="YYYY-MM-DD")
        sites = [s for s in opts.get("site", []) if run.scope is None or s in run.scope]
        outside_scope(run.scope)
        values["sites"] = st.multiselect("Sites", sites, key="sites", bind="query-params", placeholder="All sites")
        with st.expander("Client group", expanded=False):
            for name in CLIENT_GROUP:
                p = filters.GLOBAL[name]
                values[name] = st.multiselect(
                    p.label, opts.get(p.options, []), key=name, bind="query-params", placeholder="All"
                )
            co = st.selectbox(
                "Co-occurring mental health", ["any", "yes", "no"], key="co_occurring", bind="query-params"
            )
            values["co_occurring"] = {"yes": True, "no": False}.get(co)
    run.filters = {k: (v or None) if isinstance(v, list) else v for k, v in values.items()}
    return run.filters


def filters_text(values: dict) -> str:
    """Filter values in words, for captions and exported pages."""
    parts = []
    for k, v in values.items():
        if v is None:
            continue
        shown = ", ".join(v) if isinstance(v, list) else ("yes" if v is True else "no" if v is False else v)
        parts.append(f"{filters.GLOBAL[k].label}: {shown}")
    return "; ".join(parts) or "No filters (all data)"


def outside_scope(scope: tuple[str, ...] | None) -> list[str]:
    """Sites the address asks for (`?sites=`) that this user may not see: logged as a denial once per session
    and page, and said on screen. The queries never see them (their site scope is applied in the runner)."""
    if scope is None:
        return []
    outside = [s for s in st.query_params.get_all("sites") if s not in scope]
    if outside:
        names = ", ".join(outside)
        st.warning(
            f"{names} {'is' if len(outside) == 1 else 'are'} not available to you: this page shows "
            f"{', '.join(scope) or 'no site'} only.",
            icon=":material/block:",
        )
        log_once("denied", reason="site outside scope", requested=outside, allowed=list(scope), action="view")
    return outside
