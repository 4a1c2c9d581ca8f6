"""Under a chart on a page: the signals and program events drawn on it, one line each (outcomes.present.under_chart)."""

from __future__ import annotations

import re

import streamlit as st

from outcomes.present import under_chart


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
