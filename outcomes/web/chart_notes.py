"""Program events on a page's charts, and under each chart the signals and events drawn on it, one line each
(outcomes.present.under_chart)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import duckdb
import pandas as pd
import streamlit as st

from outcomes.present import annotation_marks, under_chart
from outcomes.web import context, queries
from outcomes.web.reuse import reused

QUERY = "annotations"


def plain(text: str) -> str:
    # labels are data, not markdown: no links, emphasis or colour directives from a label
    return re.sub(r"([\\`*_{}\[\]()<>#+\-.!|~:$])", r"\\\1", text)


def under(fig) -> str:
    """Write the lines recorded on `fig` under it; returns them as the note for the page PDF."""
    for line in under_chart.lines(fig, "signals"):
        st.markdown(f":orange[**{plain(line)}**]")
    events = under_chart.lines(fig, "events")
    if events:
        st.caption("  \n".join(plain(line) for line in events))
    return under_chart.text(fig)


@dataclass(frozen=True)
class Events:
    """The program events for the sites and dates in view, and what stands for them in a figure's reuse key."""

    rows: pd.DataFrame
    key: tuple

    @classmethod
    def of(cls, rows: pd.DataFrame) -> Events:
        return cls(rows, tuple(map(tuple, rows.astype(str).to_numpy())))

    def draw(self, fig):
        return annotation_marks.draw(fig, self.rows)


def events_key() -> tuple:
    """The cached run of the annotations query for this run's filters and the user's sites."""
    return queries.run_key(QUERY, queries.given(QUERY))


def events() -> Events:
    """The annotations query for this run's filters and the user's sites (none on a database loaded before
    annotations existed); worked out once per run, however many charts ask."""
    key = events_key()
    return context.once(("events", key), lambda: reused(("events", key), _events))


def _events() -> Events:
    try:
        rows = queries.run(QUERY, queries.given(QUERY)).data
    except (duckdb.CatalogException, KeyError):
        logging.getLogger(__name__).warning("no annotations table in this database; load it again to add one")
        rows = pd.DataFrame(columns=["annotation_id", "start_date", "end_date", "site", "label", "category"])
    return Events.of(rows)
