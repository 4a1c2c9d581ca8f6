"""Control-chart signals: the rules on hand-made series with answers worked out by hand, and the scan on the demo.

The series use n = 100 (or 1,000) per month from Jan 2024, so each point's rate is its count over n and the
centre line p-bar = sum(events) / sum(n) can be worked out on paper. "A" is a point above p-bar, "B" below.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import pytest
from scipy.stats import binom

from outcomes import cli
from outcomes.catalog import runner
from outcomes.measures import signal_scan, signals
from outcomes.measures.signals import analyse, crossings_limit, detect, longest_run_limit

A, B = 60, 40  # of 100: above and below the centre line in every series built from them below


def months(k: int, start: dt.date = dt.date(2024, 1, 1)) -> list[dt.date]:
    return [dt.date(start.year + (start.month - 1 + i) // 12, (start.month - 1 + i) % 12 + 1, 1) for i in range(k)]


def series(pattern: str, n: int = 100):
    """ "BABA..." -> (months, events, n); "-" is a hidden month (missing counts)."""
    events = [{"A": A, "B": B, "-": None}[c] for c in pattern]
    return months(len(pattern)), events, [None if e is None else n for e in events]


# --------------------------------------------------------------------------------------------------------------
# Critical values: Anhøj & Olesen 2014 (PLoS ONE 9(11): e113825) tabulate them by the number of useful points,
# from round(log2(n) + 3) for the longest run and the lower 5% binomial quantile for the crossings. The run
# limits below are that table's (as reproduced in quality-improvement references); the crossing limits are the
# published examples: 13 points, fewer than 3 crossings; 24 points, fewer than 8 (qicharts2's summary, by Anhøj).
# --------------------------------------------------------------------------------------------------------------

RUN_TABLE = {10: 6, 11: 6, 12: 7, 13: 7, 19: 7, 22: 7, 23: 8, 45: 8, 46: 9, 90: 9, 91: 10, 100: 10}
CROSSINGS_TABLE = {13: 3, 24: 8}


@pytest.mark.parametrize("n", sorted(RUN_TABLE))
def test_longest_run_limits_match_the_published_table(n):
    assert longest_run_limit(n) == RUN_TABLE[n]


@pytest.mark.parametrize("n", sorted(CROSSINGS_TABLE))
def test_crossing_limits_match_the_published_examples(n):
    assert crossings_limit(n) == CROSSINGS_TABLE[n]


def test_crossings_limit_is_the_lower_5_percent_binomial_quantile():
    # qbinom(0.05, n - 1, 0.5) in R; scipy's ppf is the same quantile (smallest c with P(C <= c) >= 0.05)
    assert [crossings_limit(n) for n in range(1, 201)] == [int(binom.ppf(0.05, n - 1, 0.5)) for n in range(1, 201)]
    assert [longest_run_limit(n) for n in (10, 23, 64, 91)] == [round(math.log2(n) + 3) for n in (10, 23, 64, 91)]


# --------------------------------------------------------------------------------------------------------------
# The run rules
# --------------------------------------------------------------------------------------------------------------


def test_a_run_of_8_below_is_a_signal():
    # 12 alternating (B first, so the last is A), then 8 B: 20 points, 6 A and 14 B.
    # p-bar = (6 * 60 + 14 * 40) / 2000 = 0.46: A above, B below. Useful points 20, so the longest run allowed
    # is round(log2(20) + 3) = round(7.32) = 7, and the run of 8 is a signal. Crossings: 11 in the alternating
    # part + 1 into the run = 12, not fewer than 6. Limits: sd = sqrt(.46 * .54 / 100) = 0.0498, Laney sigma_z
    # = (12 * 4.02 / 19) / 1.128 = 2.25, so 0.46 +- 0.336: every point inside.
    found = analyse(*series("BA" * 6 + "B" * 8), measure="stepdown_14", label="14-day step-down", site="Northside")
    assert (found.points, found.useful, found.longest_run, found.run_limit) == (20, 20, 8, 7)
    assert (found.crossings, found.crossings_limit) == (12, 6)
    assert len(found.signals) == 1
    s = found.signals[0]
    assert (s.rule, s.direction, s.start_month, s.end_month) == (
        "long_run",
        "below",
        dt.date(2025, 1, 1),
        dt.date(2025, 8, 1),
    )
    assert (s.measure, s.site, s.label) == ("stepdown_14", "Northside", "14-day step-down")
    assert s.sentence == "8 months in a row below the centre line since Jan 2025"
    assert s.detail == "run of 8 below the centre line (more than 7 for 20 useful points)"
    assert len(s.months) == 8


def test_a_run_of_7_is_no_signal_at_20_points_but_is_at_10():
    # 13 alternating (A first and last), then 7 B: 20 points, 7 A and 13 B, p-bar = (7*60 + 13*40)/2000 = 0.47.
    # Limit for 20 useful points: 7; a run of 7 is not longer, so no signal (13 crossings, not fewer than 6).
    at_20 = analyse(*series("AB" * 6 + "A" + "B" * 7))
    assert (at_20.longest_run, at_20.run_limit, at_20.crossings) == (7, 7, 13)
    assert at_20.signals == []
    # 3 alternating (A, B, A), then 7 B: 10 points, 2 A and 8 B, p-bar = (120 + 320) / 1000 = 0.44. Limit for 10
    # useful points: round(log2(10) + 3) = round(6.32) = 6, so the same run of 7 is a signal. Crossings: 3, not
    # fewer than 2.
    at_10 = analyse(*series("ABA" + "B" * 7))
    assert (at_10.longest_run, at_10.run_limit, at_10.crossings, at_10.crossings_limit) == (7, 6, 3, 2)
    assert [s.rule for s in at_10.signals] == ["long_run"]
    assert at_10.signals[0].sentence == "7 months in a row below the centre line since Apr 2024"


def test_alternating_points_are_not_a_signal():
    # 20 alternating points: 19 crossings, far more than expected, which is not one of the rules; runs of 1.
    found = analyse(*series("AB" * 10))
    assert (found.crossings, found.longest_run) == (19, 1)
    assert found.signals == []


def test_too_few_crossings_is_a_signal():
    # Runs of 5: AAAAA BBBBB AAAAA BBBBB. 20 useful points, p-bar = 0.5 exactly (10 A, 10 B): crossings 3 < 6,
    # longest run 5 <= 7. Laney sigma_z = (3 * 4 / 19) / 1.128 = 0.56, so plain p limits 0.5 +- 0.15: inside.
    found = analyse(*series("AAAAABBBBBAAAAABBBBB"))
    assert (found.crossings, found.crossings_limit, found.longest_run) == (3, 6, 5)
    assert [s.rule for s in found.signals] == ["few_crossings"]
    s = found.signals[0]
    assert (s.start_month, s.end_month, s.direction) == (dt.date(2024, 1, 1), dt.date(2025, 8, 1), "")
    assert s.sentence == (
        "Only 3 crossings of the centre line in 20 months from Jan 2024 to Aug 2025, where at "
        "least 6 are expected by chance"
    )


def test_a_long_run_that_ended_gives_its_months():
    # 10 A then 10 B: one crossing (< 6) and two runs of 10 (> 7); the first run ended in Oct 2024.
    found = analyse(*series("A" * 10 + "B" * 10))
    assert [(s.rule, s.direction) for s in found.signals] == [
        ("long_run", "above"),
        ("few_crossings", ""),
        ("long_run", "below"),
    ]
    assert found.signals[0].sentence == "10 months in a row above the centre line from Jan 2024 to Oct 2024"
    assert found.signals[2].sentence == "10 months in a row below the centre line since Nov 2024"


# --------------------------------------------------------------------------------------------------------------
# The 3-sigma rule
# --------------------------------------------------------------------------------------------------------------


def test_a_point_outside_the_limits_is_a_signal():
    # 20 months of n = 1,000: 300 and 320 alternating (300 first), and 450 in month 11 (Nov 2024).
    # p-bar = (9 * 300 + 10 * 320 + 450) / 20000 = 0.3175; sd = sqrt(.3175 * .6825 / 1000) = 0.014721.
    # z: 0.30 -> -1.189, 0.32 -> 0.170, 0.45 -> 9.001; moving ranges: 17 of 1.359 and 2 of 8.831, mean 2.146,
    # so sigma_z = 2.146 / 1.128 = 1.902 > 1 and the chart uses Laney p' limits: UCL = 0.3175 + 3 * 0.014721 *
    # 1.902 = 0.4015. 0.45 is above it; every other point is inside. Runs: at most 3 (0.32, 0.45, 0.32).
    events = [300 if i % 2 == 0 else 320 for i in range(20)]
    events[10] = 450
    found = analyse(months(20), events, [1000] * 20, measure="iop_attendance")
    assert found.method == "laney"
    assert [(s.rule, s.direction, s.start_month) for s in found.signals] == [
        ("outside_limits", "above", dt.date(2024, 11, 1))
    ]
    assert found.signals[0].sentence == "Nov 2024 is above the upper control limit (45.0% against 40.1%)"
    assert found.signals[0].detail == "45.0% above the upper Laney p′ limit 40.1% (centre 31.8%)"


def test_the_limits_are_the_charts_own():
    # the rule flags exactly the points the p-chart marks as outside (same function, same method)
    from outcomes.measures.stats import p_chart

    events = [300 if i % 2 == 0 else 320 for i in range(20)]
    events[10], events[15] = 450, 190
    drawn = p_chart(events, [1000] * 20)
    flagged = {s.start_month for s in detect(months(20), events, [1000] * 20) if s.rule == "outside_limits"}
    assert (
        flagged
        == {m for m, out in zip(months(20), drawn["outside"]) if out}
        == {dt.date(2024, 11, 1), dt.date(2025, 4, 1)}
    )


# --------------------------------------------------------------------------------------------------------------
# Short series, hidden points and points on the centre line
# --------------------------------------------------------------------------------------------------------------


def test_a_short_series_has_no_signals():
    # 9 points: fewer than MIN_POINTS (10), even with a run of 8 that would otherwise be one.
    found = analyse(*series("A" + "B" * 8))
    assert (found.points, found.enough, found.signals) == (9, False, [])


def test_hidden_points_are_not_points():
    # The run of 8 B with two hidden months inside it: still 8 points in a row (hidden months neither count nor
    # break the run), 20 shown points, so the limit is still 7. The sentence says the hidden months were skipped.
    pattern = "BA" * 6 + "BBB-BB-BBB"
    found = analyse(*series(pattern))
    assert (found.points, found.longest_run, found.run_limit) == (20, 8, 7)
    (s,) = found.signals
    assert (s.start_month, s.end_month) == (dt.date(2025, 1, 1), dt.date(2025, 10, 1))
    assert s.sentence == "8 months in a row below the centre line since Jan 2025 (2 hidden months not counted)"
    # 9 shown points and 5 hidden: too few, whatever the hidden months held
    assert analyse(*series("A-B-A-B-A-BBBB-B")).signals == []
    # a month with n = 0 is no point either
    m, e, n = series("BA" * 6 + "B" * 8)
    assert analyse(m + [dt.date(2025, 9, 1)], e + [0], n + [0]).points == 20


def test_points_on_the_centre_line_are_not_useful():
    # 10 A (60), 10 B (40) and 1 point at exactly p-bar = 0.5 (50 of 100) inside the second run: 21 shown,
    # 20 useful, so the limit is that of 20 (7); the run of B is 10 long, the middle point neither counts nor
    # breaks it.
    m = months(21)
    events = [60] * 10 + [40] * 5 + [50] + [40] * 5
    found = analyse(m, events, [100] * 21)
    assert (found.points, found.useful, found.run_limit) == (21, 20, 7)
    runs = [s for s in found.signals if s.rule == "long_run"]
    assert [len(s.months) for s in runs] == [10, 10]
    assert runs[1].sentence.endswith("(1 month on the centre line not counted)")


def test_signals_are_drawn_on_the_p_chart():
    from outcomes.present import control_charts, under_chart

    # the run of 8 B from the first test, and month 5 far above: a band behind the run, a ring on the point
    m, e, n = series("BA" * 6 + "B" * 8)
    e[4] = 95
    rows = pd.DataFrame({"month": pd.to_datetime(m), "events": e, "n": n})
    found = detect(rows["month"], rows["events"], rows["n"])
    assert sorted(s.rule for s in found) == ["long_run", "outside_limits"]
    fig = control_charts.rate_p_chart(rows, "month", "events", "n")  # every p-chart draws its own signals
    band = next(t for t in fig.data if t.name == "signal: long run")
    ring = next(t for t in fig.data if t.name == "signal: outside limits")
    assert [pd.Timestamp(x).date() for x in band.x] == months(20)[12:]
    assert list(band.y) == [0.4] * 8
    assert [pd.Timestamp(x).date() for x in ring.x] == [dt.date(2024, 5, 1)] and list(ring.y) == [0.95]
    names = [t.name for t in fig.data]
    assert max(names.index("signal: long run"), names.index("signal: outside limits")) < names.index("rate")
    assert band.showlegend and ring.showlegend
    assert under_chart.lines(fig, "signals") == [
        "Signal: May 2024 is above the upper control limit (95.0% against 86.5%).",  # Laney p′: wider than 3-sigma
        "Signal: 8 months in a row below the centre line since Jan 2025.",
    ]


def test_order_of_rows_does_not_matter():
    m, e, n = series("BA" * 6 + "B" * 8)
    assert detect(m[::-1], e[::-1], n[::-1]) == detect(m, e, n)


def test_counts_must_be_whole():
    with pytest.raises(ValueError, match="whole"):
        analyse(months(10), [1.5] * 10, [10] * 10)


# --------------------------------------------------------------------------------------------------------------
# Series from catalog queries, the scan and the command line (demo database)
# --------------------------------------------------------------------------------------------------------------


def test_series_rows_skip_hidden_rates_and_apply_where():
    df = pd.DataFrame(
        {
            "month": pd.to_datetime(["2024-02-01", "2024-01-01", "2024-01-01", "2024-03-01"]),
            "level_of_care": ["iop", "iop", "op", "iop"],
            "completed": [20, 5, 9, 30],
            "discharges": [40, 12, 30, 50],
            "completion_rate": [0.5, None, 0.3, 0.6],
        }
    )
    rows = signals.series_rows(signals.SERIES_BY_KEY["iop_completion"], df)
    assert rows["month"].dt.strftime("%Y-%m").tolist() == ["2024-01", "2024-02", "2024-03"]
    assert rows["events"].isna().tolist() == [True, False, False]  # the rate is hidden: no point
    assert rows["n"].tolist()[1:] == [40, 50]


def test_every_series_is_a_monthly_rate_of_its_query(catalog, demo_db):
    for s in signals.SERIES:
        q = catalog[s.query]
        assert q.suppress["rates"][s.rate] == [s.events, s.n], s.key  # the rate is events / n, as declared
        df = runner.run(demo_db, q, s.params).data
        assert "month" in df and len(signals.series_rows(s, df)) > 0, s.key


def test_scan_reads_suppressed_results_only(catalog, demo_db):
    # per site, the rules see exactly the months whose counts and rate the screen shows, never a hidden one
    s = signals.SERIES_BY_KEY["stepdown_14"]
    shown = runner.run(demo_db, catalog[s.query], s.params | {"sites": ["Northside"]}).data
    raw = runner.run(demo_db, catalog[s.query], s.params | {"sites": ["Northside"]}, raw=True).data
    _, analysis = signal_scan.analyse_series(demo_db, s, ["Northside"], None, catalog, "Northside")
    assert analysis.points == int(shown["stepdown_rate"].notna().sum()) < len(raw)


def test_scan_views_and_scope(demo_db, catalog):
    assert signal_scan.views(demo_db) == [
        ("Eastgate", ["Eastgate"]),
        ("Northside", ["Northside"]),
        ("Riverside", ["Riverside"]),
        ("", None),
    ]
    assert signal_scan.views(demo_db, scope=("Northside",)) == [("Northside", ["Northside"])]
    assert signal_scan.views(demo_db, ["Northside", "Riverside"]) == [
        ("Northside", ["Northside"]),
        ("Riverside", ["Riverside"]),
        ("", ["Northside", "Riverside"]),
    ]
    found = signal_scan.scan(demo_db, scope=("Northside",), catalog=catalog)
    assert {s.site for s in found} <= {"Northside"}


def test_a_scan_reuses_the_views_an_earlier_scan_kept(demo_db, catalog):
    kept, made = {}, []

    def keep(key, make):
        if key not in kept:
            made.append(key)
            kept[key] = make()
        return kept[key]

    alone = signal_scan.scan(demo_db, ["Northside"], catalog=catalog, keep=keep)
    per_view = len(made)  # its population check and each distinct query of the series
    assert per_view >= 2
    both = signal_scan.scan(demo_db, ["Northside", "Riverside"], catalog=catalog, keep=keep)
    assert len(made) == 3 * per_view  # Northside's view was kept: Riverside's and the two together are new
    assert alone == signal_scan.scan(demo_db, ["Northside"], catalog=catalog)
    assert both == signal_scan.scan(demo_db, ["Northside", "Riverside"], catalog=catalog)
    assert {s.site for s in both} - {"Northside", "Riverside"} <= {""}


def test_signals_command(demo_db_path, capsys):
    assert cli.main(["signals", "--db", str(demo_db_path), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows, "the demo data has signals"
    assert set(rows[0]) == {"measure", "site", "rule", "start_month", "end_month", "detail"}
    assert {r["rule"] for r in rows} <= set(signals.RULES)
    assert {r["measure"] for r in rows} <= set(signals.SERIES_BY_KEY)
    assert cli.main(["signals", "--db", str(demo_db_path), "--site", "Northside", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "measure,site,rule,start_month,end_month,detail"
    assert all(",Northside," in line for line in lines[1:])
    assert cli.main(["signals", "--db", str(demo_db_path), "--site", "Nowhere"]) == 2
    assert "unknown site Nowhere" in capsys.readouterr().err


def test_a_grid_names_each_panels_signals_by_quarter():
    from outcomes.present import control_charts, under_chart

    # 24 quarters from Q1 2020: A and B in turn for 15, then 9 B below the centre line, at Northside only
    quarters = [dt.date(2020 + i // 4, 3 * (i % 4) + 1, 1) for i in range(24)]
    north = [A if i % 2 == 0 else B for i in range(15)] + [B - 5] * 9
    south = [A if i % 2 == 0 else B for i in range(24)]
    rows = pd.DataFrame(
        {
            "site": ["Northside"] * 24 + ["Southside"] * 24,
            "period": quarters * 2,
            "events": north + south,
            "n": [100] * 48,
        }
    )
    fig = control_charts.p_chart_grid(rows, "site", "period", "events", "n")
    assert under_chart.lines(fig, "signals") == [
        "Signal at Northside: 9 quarters in a row below the centre line since Q4 2023."
    ]
    (band,) = [t for t in fig.data if t.name == "signal: long run"]
    assert band.xaxis == "x" and [pd.Timestamp(x).date() for x in band.x] == quarters[15:]


def test_no_signals_on_an_axis_that_is_not_monthly():
    from outcomes.present.signal_marks import unit_of

    assert unit_of(pd.to_datetime(["2024-01-01", "2024-02-01"])) == "month"
    assert unit_of([dt.date(2024, 1, 1), dt.date(2024, 4, 1), dt.date(2024, 10, 1)]) == "quarter"
    assert unit_of([dt.date(2024, 1, 1), dt.date(2024, 1, 8)]) is None  # weeks
    assert unit_of([0, 1, 2]) is None and unit_of(["iop", "op"]) is None
