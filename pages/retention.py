"""Do clients stay in IOP, how do episodes end, and do they come back?"""

import streamlit as st

from outcomes.web.report import report_page

with report_page("retention", "Retention and outcomes") as page:
    page.panel("iop_retention", max_day=120)
    benchmark = st.toggle(
        "Show the TEDS IOP completion benchmark", value=True, key="teds_benchmark", bind="query-params"
    )
    page.panel("discharge_outcomes", benchmark=benchmark)
    rates = st.segmented_control(
        "Site rates",
        ["adjusted", "raw"],
        default="adjusted",
        key="completion_sites",
        format_func=str.capitalize,
        bind="query-params",
        required=True,
    )
    page.panel("site_comparison", measure="iop_completion", rate=f"{rates}_rate")
    with page.columns(2):
        page.panel("discharge_outcomes_by_level")
        page.panel("length_of_stay")
    days = st.segmented_control(
        "Readmission window (days)", [30, 90], default=30, key="readmit_window", bind="query-params", required=True
    )
    page.panel("readmission", window=days)
