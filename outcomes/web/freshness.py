"""The stale-data warning: a page says so when its data end long before today."""

from __future__ import annotations

import datetime as dt

import streamlit as st

STALE_DAYS = 45  # data through more than this many days before today read as out of date


def stale_text(data_through: dt.date, today: dt.date | None = None) -> str:
    """The warning for data through `data_through` seen on `today`, or "" while the data are recent."""
    today = today or dt.date.today()
    age = (today - data_through).days
    if age <= STALE_DAYS:
        return ""
    return (
        f"These data end on {data_through:%-d %B %Y}, {age} days ago: recent months are missing. "
        "Ask the data team to load the latest extracts."
    )


def warn(data_through: dt.date) -> None:
    """Draw the warning when the data are stale."""
    text = stale_text(data_through)
    if text:
        st.warning(text, icon=":material/schedule:")
