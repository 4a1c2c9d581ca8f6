"""Are IOP clients showing up, week by week, and getting a full dose?"""

import streamlit as st

from outcomes.web.report import report_page

with report_page("engagement", "Engagement in IOP") as page:
    weeks = st.slider("Weeks since admission", 4, 26, 12, key="weeks", bind="query-params")
    page.panel("engagement_heatmap", max_weeks=weeks)
    page.panel("engagement_by_week", max_weeks=weeks)
    page.panel("attendance_weekly")
    with page.columns(2):
        page.panel("iop_dose")
        page.panel("family_participation")
