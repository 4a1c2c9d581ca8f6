"""The global filters in the sidebar, bound to the page address, and their values for this run."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from outcomes.catalog import filters
from outcomes.present import labels
from outcomes.web import context, filter_choices, freshness
from outcomes.web.audit import log_once
from outcomes.web.database import info, options

CLIENT_GROUP = ("payers", "genders", "age_bands", "substances", "living", "employment", "tracks")


WITHOUT_FILTERS = {"data"}  # pages the filters do nothing on (url paths): they show the data-through date only


def draw(page: str | None = None) -> dict:
    """Draw the global filters in the sidebar, bound to the address; keep their values in the run's context.
    On a page of WITHOUT_FILTERS only the data-through date is shown."""
    run = context.current()
    if not run.user.authorised:
        return {}
    facts = info(run.version)
    through = facts["data_through"]
    age = (dt.date.today() - through).days
    stale = f" ({age} days ago)" if freshness.stale_text(through) else ""
    if page in WITHOUT_FILTERS:
        st.sidebar.caption(f"Data through **{through:%d %b %Y}**{stale}")
        run.filters = {}
        return run.filters
    opts = options(run.version)
    _readable_address(opts)
    with st.sidebar:
        st.caption(f"Data through **{through:%d %b %Y}**{stale}")
        values: dict = {}
        # one under the other: side by side, a sidebar's half width cuts the date off
        values["start"] = st.date_input("From", value=None, key="start", bind="query-params", format="YYYY-MM-DD")
        values["end"] = st.date_input("To", value=None, key="end", bind="query-params", format="YYYY-MM-DD")
        sites = [s for s in opts.get("site", []) if run.scope is None or s in run.scope]
        outside_scope(run.scope)
        values["sites"] = st.multiselect("Sites", sites, key="sites", bind="query-params", placeholder="All sites")
        with st.expander("Client group", expanded=False):
            held = filter_choices.choices(run.version, run.scope)  # values at the user's sites, small as Other
            for name in CLIENT_GROUP:
                p = filters.GLOBAL[name]
                offer = held.get(p.options, filter_choices.Choices([], []))
                picked = st.multiselect(
                    p.label,
                    offer.offered,
                    key=name,
                    bind="query-params",
                    placeholder="All",
                    format_func=labels.value,
                )
                values[name] = filter_choices.values(picked, offer)
            co = st.selectbox(
                "Co-occurring mental health", ["any", "yes", "no"], key="co_occurring", bind="query-params"
            )
            values["co_occurring"] = {"yes": True, "no": False}.get(co)
    values["sites"] = sorted(values["sites"])  # one order, so the same sites are one cached view
    run.filters = {k: (v or None) if isinstance(v, list) else v for k, v in values.items()}
    return run.filters


def _readable_address(opts: dict) -> None:
    """The client-group filters are bound to the address by their readable labels ("Self-pay"); an address
    naming stored values ("self_pay", as links made before did) is rewritten to the labels, once, so it still
    selects the same view."""
    changed = False
    for name in CLIENT_GROUP:
        given = st.query_params.get_all(name)
        known = set(opts.get(filters.GLOBAL[name].options, []))
        readable = [labels.value(v) if v in known else v for v in given]
        if readable != given:
            st.query_params[name] = readable
            changed = True
    if changed:
        st.rerun()


def filters_text(values: dict) -> str:
    """Filter values in words, for captions and exported pages."""
    parts = []
    run = context.current()
    held = filter_choices.choices(run.version, run.scope) if run.user.authorised else {}
    for k, v in values.items():
        if v is None:
            continue
        offer = held.get(filters.GLOBAL[k].options)
        if isinstance(v, list) and offer and offer.small and set(offer.small) <= set(v):
            v = [x for x in v if x not in offer.small] + [offer.offered[-1]]  # never name a group of 1 to 10
        shown = (
            ", ".join(labels.value(x) for x in v)
            if isinstance(v, list)
            else ("yes" if v is True else "no" if v is False else v)
        )
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
