"""Are clients stepping down from residential to IOP without a gap?"""

import streamlit as st

from outcomes import ui

ui.page("Step-down from residential to IOP")
window = st.segmented_control("Window (days after discharge)", [7, 14, 30], default=14, key="window",
                              bind="query-params", required=True)
ui.section("stepdown_rate", {"window_days": window}, title=f"{window}-day step-down rate by discharge month",
           empty="No residential discharges match these filters.",
           p_chart=("stepped_down", "eligible_discharges"))
