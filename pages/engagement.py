"""Are IOP clients showing up, week by week since admission?"""

import streamlit as st

from outcomes import ui

ui.page("Engagement in IOP")
weeks = st.slider("Weeks since admission", 4, 26, 12, key="weeks", bind="query-params")
ui.section("engagement_by_week", {"max_weeks": weeks}, empty="No IOP episodes match these filters.")
