"""Are IOP clients showing up, week by week, and getting a full dose?"""

import streamlit as st

from outcomes.present import charts
from outcomes.web import panels, pdf

panels.report_page("Engagement in IOP")
weeks = st.slider("Weeks since admission", 4, 26, 12, key="weeks", bind="query-params")
panels.panel("engagement_heatmap", {"max_weeks": weeks}, title="Attendance by admission month and week since admission",
         empty="No IOP admissions match these filters.", recent_months=12,
         chart=lambda df: charts.rate_heatmap(df, "week", "admit_month", "attendance_rate", "scheduled",
                                              x_label="Week since admission", y_label="Admitted"))
panels.panel("engagement_by_week", {"max_weeks": weeks}, title="Attendance by week since admission",
         empty="No IOP episodes match these filters.",
         chart=lambda df: charts.rate_lines(df, "week", "attendance_rate", "scheduled_sessions",
                                            y_label="Attended", height=300))
panels.panel("attendance_weekly", title="Weekly attendance and no-shows by track and session type",
         empty="No IOP sessions match these filters.", recent_weeks=26,
         chart=lambda df: charts.facet_rates(df, "week_start", {"attendance_rate": "Attended",
                                                                 "no_show_rate": "No-show"},
                                             "session_type", "track", "scheduled"))
left, right = st.columns(2, gap="large")
with left:
    panels.panel("iop_dose", title="Weekly dose by track", empty="No IOP episodes match these filters.",
             chart=lambda df: charts.rate_bars(df, "track", {"share_3plus_sessions": "3+ sessions",
                                                             "share_9plus_hours": "9+ hours"}, "client_weeks",
                                               height=320))
with right:
    panels.panel("family_participation", title="Family sessions by month",
             empty="No IOP sessions match these filters.",
             chart=lambda df: charts.rate_lines(df, "month", "family_rate", "active_episodes",
                                                y_label="With a family session", height=320))
pdf.pdf_export()
