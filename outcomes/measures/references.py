"""External reference values drawn on charts, each with the one measure it may be compared with and its source.

A benchmark only goes on a chart whose definition matches the one it was measured with: the VA follow-up
rates belong on the FUI-aligned follow-up chart (any outpatient care after a residential stay), never on
the IOP step-down rate; the TEDS completion share belongs on the IOP completion chart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    value: float
    label: str  # drawn next to the line
    source: str  # the footnote under the chart


VA_SOURCE = (
    "Benchmark: mean share of discharges from the VA's 63 SUD residential rehabilitation treatment programs "
    "with an outpatient SUD or mental health visit within 7 days (59%) and 30 days (80%), fiscal year 2012 "
    "(Rubinsky AD et al. Outpatient continuing care after residential substance use disorder treatment in the "
    "US Veterans Health Administration. Substance Abuse 2018;39(3):322–330). Not like for like: VA counts any "
    "VA outpatient SUD or MH visit after residential care; ours counts attended PHP, IOP or OP sessions at this "
    "provider only, after residential or withdrawal management discharges. It does not apply to the IOP "
    "step-down rate."
)

VA_FOLLOWUP = {
    7: Benchmark(0.59, "VA residential programs, 7 days: 59%", VA_SOURCE),
    30: Benchmark(0.80, "VA residential programs, 30 days: 80%", VA_SOURCE),
}

TEDS_IOP_COMPLETION = Benchmark(
    0.377,
    "TEDS 2004 IOP completion: 37.7%",
    "Benchmark: 37.7% of 114,440 discharges from intensive outpatient treatment in 2004 completed treatment "
    "(SAMHSA, Treatment Episode Data Set – Discharges 2004, table 2.5; facilities reporting to the "
    "substance abuse agencies of 28 states and jurisdictions). TEDS counts a transfer to further treatment (17.9%) separately, as we do; ours is every IOP "
    "discharge at this provider, any payer.",
)


# By the name a query header gives (`chart: {benchmark: NAME}`).
BENCHMARKS = {
    "va_followup_7": VA_FOLLOWUP[7],
    "va_followup_30": VA_FOLLOWUP[30],
    "teds_iop_completion": TEDS_IOP_COMPLETION,
}
