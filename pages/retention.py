"""Do clients stay in IOP, how do episodes end, and do they come back?"""

import streamlit as st

from outcomes.measures import references as benchmarks
from outcomes.present import charts
from outcomes.web import panels, pdf

panels.report_page("Retention and outcomes")
panels.panel("iop_retention", {"max_day": 120}, title="Retention in IOP by entry route and track (Kaplan–Meier)",
         empty="No IOP admissions match these filters.", n_at={"day": 0}, footnote=charts.CURVE_NOTE,
         chart=lambda df: charts.curves(df, "day", "retained", "at_risk", color="curve", marks=(30, 60, 90),
                                        y_label="Not dropped out", x_label="Days since admission"))
show = panels.benchmark_toggle("Show the TEDS IOP completion benchmark", key="teds_benchmark")
bench = benchmarks.TEDS_IOP_COMPLETION
panels.panel("discharge_outcomes", title="IOP completion by month of discharge", where={"level_of_care": "iop"},
         key="iop_completion", empty="No IOP discharges match these filters.",
         chart=lambda df: charts.rate_p_chart(df, "month", "completed", "discharges", rate="completion_rate",
                                              benchmark=bench if show else None),
         footnote=bench.source if show else None)
left, right = st.columns(2, gap="large")
with left:
    panels.panel("discharge_outcomes_by_level", title="Completed or left against advice",
             empty="No discharges match these filters.",
             chart=lambda df: charts.rate_bars(df, "level_of_care", {"completion_rate": "Completed",
                                                                     "left_against_advice_rate": "Left against advice"},
                                               "discharges", x_labels=charts.LEVEL_TICKS, height=320))
with right:
    panels.panel("length_of_stay", title="Length of stay (median, quartiles)",
             empty="No discharges match these filters.",
             chart=lambda df: charts.median_bars(df, "level_of_care", "median_days", "p25_days", "p75_days",
                                                 "episodes", x_labels=charts.LEVEL_TICKS, height=320))
days = st.segmented_control("Readmission window (days)", [30, 90], default=30, key="readmit_window",
                            bind="query-params", required=True)
panels.panel("readmission", title=f"Readmission within {days} days of a residential or IOP discharge",
         empty="No residential or IOP discharges match these filters.", n=f"discharges_{days}",
         chart=lambda df: charts.rate_lines(df, "month", f"readmission_rate_{days}", f"discharges_{days}",
                                            color="level_of_care", y_label="Readmitted",
                                            colours=charts.LEVEL_COLOURS))
pdf.pdf_export()
