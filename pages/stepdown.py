"""Are clients stepping down from residential to IOP without a gap, and are they followed up?"""

import streamlit as st

from outcomes.measures import references as benchmarks
from outcomes.present import charts
from outcomes.web import panels, pdf

panels.report_page("Step-down from residential to IOP")
window = st.segmented_control("Window (days after discharge)", [7, 14, 30], default=14, key="window",
                              bind="query-params", required=True)
panels.panel("stepdown_rate", {"window_days": window}, title=f"{window}-day step-down rate by discharge month",
         empty="No residential discharges match these filters.",
         chart=lambda df: charts.rate_p_chart(df, "month", "stepped_down", "eligible_discharges", rate="stepdown_rate"))
grain = st.segmented_control("Sites per", ["quarter", "month"], default="quarter", key="site_grain",
                             bind="query-params", required=True)
panels.panel("stepdown_by_site", {"window_days": window, "grain": grain}, title=f"{window}-day step-down rate by site",
         empty="No residential discharges match these filters.",
         chart=lambda df: charts.p_chart_grid(df, "site", "period", "stepped_down", "eligible_discharges",
                                              rate="stepdown_rate"))
panels.panel("time_to_stepdown", {"max_day": 30}, title="Days from discharge to first IOP session, by discharge reason",
         empty="No residential discharges match these filters.", n_at={"day": 0}, footnote=charts.CURVE_NOTE,
         chart=lambda df: charts.curves(df, "day", "cumulative_share", "at_risk", color="reason_group",
                                        marks=(7, 14, 30), y_label="Reached IOP", x_label="Days after discharge",
                                        hover_word=" reached IOP"))
left, right = st.columns(2, gap="large")
with left:
    panels.panel("referral_conversion", title="IOP referral funnel", where={"to_level_of_care": "iop"},
             empty="No IOP referrals match these filters.",
             chart=lambda df: charts.funnel(df, {"referred": "Referred", "admitted": "Admitted",
                                                 "attended_14d": "Attended ≤14 days"}, "site",
                                            {"admitted": "admitted_rate", "attended_14d": "attended_rate"}))
with right:
    panels.panel("referral_not_arrived", title="Referred, not arrived", empty="No referrals match these filters.",
             recent_months=12,
             chart=lambda df: charts.rate_heatmap(df, "month", "site", "not_arrived_rate", "referred",
                                                  x_label="Month of referral", height=300))
st.divider()
fui_window = st.segmented_control("Follow-up window (days)", [7, 30], default=7, key="fui_window",
                                  bind="query-params", required=True)
show = panels.benchmark_toggle("Show the VA residential benchmark", key="va_benchmark")
bench = benchmarks.VA_FOLLOWUP[fui_window]
panels.panel("fui_followup", {"window_days": fui_window},
         title=f"{fui_window}-day follow-up after residential or withdrawal management (FUI-aligned)",
         empty="No residential or withdrawal management discharges match these filters.",
         chart=lambda df: charts.rate_p_chart(df, "month", "followed_up", "eligible_discharges",
                                              rate="followup_rate", benchmark=bench if show else None),
         footnote=bench.source if show else None)
pdf.pdf_export()
