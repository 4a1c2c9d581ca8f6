"""Are clients stepping down from residential to IOP without a gap, and are they followed up?"""

import streamlit as st

from outcomes.web.report import report_page

with report_page("stepdown", "Step-down from residential to IOP") as page:
    window = st.segmented_control(
        "Window (days after discharge)", [7, 14, 30], default=14, key="window", bind="query-params", required=True
    )
    page.panel("stepdown_rate", window_days=window)
    grain = st.segmented_control(
        "Sites per", ["quarter", "month"], default="quarter", key="site_grain", bind="query-params", required=True
    )
    page.panel("stepdown_by_site", window_days=window, grain=grain)
    rates = st.segmented_control(
        "Site rates",
        ["adjusted", "raw"],
        default="adjusted",
        key="stepdown_sites",
        format_func=str.capitalize,
        bind="query-params",
        required=True,
    )
    page.panel("site_comparison", measure=f"stepdown_{window}", rate=f"{rates}_rate")
    page.panel("time_to_stepdown", max_day=30)
    with page.columns(2):
        page.panel("referral_conversion")
        page.panel("referral_not_arrived")
    st.divider()
    fui_window = st.segmented_control(
        "Follow-up window (days)", [7, 30], default=7, key="fui_window", bind="query-params", required=True
    )
    benchmark = st.toggle("Show the VA residential benchmark", value=True, key="va_benchmark", bind="query-params")
    page.panel("fui_followup", window_days=fui_window, benchmark=benchmark)
    fui_rates = st.segmented_control(
        "Site rates",
        ["adjusted", "raw"],
        default="adjusted",
        key="fui_sites",
        format_func=str.capitalize,
        bind="query-params",
        required=True,
    )
    page.panel("site_comparison", measure=f"followup_{fui_window}", rate=f"{fui_rates}_rate")
