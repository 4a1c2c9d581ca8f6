"""Chart text alternatives from hand-made suppressed rows (hidden cells missing)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from outcomes.present.alt_text import summary

P_CHART = {"kind": "p_chart", "x": "month", "events": "stepped_down", "n": "eligible_discharges", "rate": "rate"}


def months(n: int, start: str = "2025-01-01") -> pd.Series:
    return pd.Series(pd.date_range(start, periods=n, freq="MS"))


def test_one_line_latest_against_first_with_hidden_months():
    df = pd.DataFrame(
        {"month": months(4, "2025-07-01"), "eligible_discharges": [40, 5, 50, 60], "rate": [0.31, np.nan, 0.3, 0.35]}
    )
    assert summary(P_CHART, df, "14-day step-down") == (
        "14-day step-down was 35% in Oct 2025, 4 points above Jul 2025; 1 of 4 months hidden."
    )


def test_a_fall_and_no_change_and_singular_point():
    df = pd.DataFrame({"month": months(2), "rate": [0.50, 0.49]})
    assert summary(P_CHART, df, "Rate") == "Rate was 49% in Feb 2025, 1 point below Jan 2025."
    df = pd.DataFrame({"month": months(2), "rate": [0.5, 0.5]})
    assert summary(P_CHART, df, "Rate") == "Rate was 50% in Feb 2025, the same as Jan 2025."


def test_hidden_last_point_uses_the_latest_shown():
    df = pd.DataFrame({"month": months(3), "rate": [0.2, 0.25, np.nan]})
    assert summary(P_CHART, df, "Rate") == "Rate was 25% in Feb 2025, 5 points above Jan 2025; 1 of 3 months hidden."


def test_all_hidden():
    df = pd.DataFrame({"month": months(3), "rate": [np.nan] * 3})
    assert summary(P_CHART, df, "Rate") == (
        "Rate: all 3 months are hidden because they come from small numbers (1–10)."
    )


def test_no_rows():
    assert summary(P_CHART, pd.DataFrame({"month": [], "rate": []}), "Rate") == "Rate: no data for these filters."


def test_a_few_lines_each_get_their_latest_value_counts_are_not_percent():
    chart = {"kind": "rate_lines", "x": "week_start", "y": "active", "color": "level", "percent": False}
    df = pd.DataFrame(
        {
            "week_start": pd.to_datetime(["2025-10-06", "2025-10-13"] * 2),
            "level": ["iop", "iop", "op", "op"],
            "active": [80, 90, 350, np.nan],
        }
    )
    assert summary(chart, df, "Census") == (
        "Census: IOP 90 in the week of 13 Oct 2025, 10 more than 6 Oct 2025; OP 350 in the week of 6 Oct 2025; "
        "1 of 4 values hidden."
    )


def test_numeric_x_reads_as_its_name():
    chart = {"kind": "rate_lines", "x": "week", "y": "attendance_rate"}
    df = pd.DataFrame({"week": [1, 2, 12], "attendance_rate": [0.87, 0.8, 0.67]})
    assert summary(chart, df, "Attendance") == "Attendance was 67% at week 12, 20 points below week 1."


def test_categories_give_highest_and_lowest_per_measure():
    chart = {
        "kind": "rate_bars",
        "x": "level",
        "ys": {"completion_rate": "Completed", "ama_rate": "Left against advice"},
    }
    df = pd.DataFrame(
        {"level": ["residential", "iop", "php"], "completion_rate": [0.7, 0.5, np.nan], "ama_rate": [0.3, 0.1, 0.2]}
    )
    assert summary(chart, df, "Outcomes") == (
        "Outcomes: Completed highest 70% (Residential), lowest 50% (IOP); "
        "Left against advice highest 30% (Residential), lowest 10% (IOP); 1 of 6 values hidden."
    )


def test_many_series_give_extremes_not_a_list():
    chart = {"kind": "p_chart_grid", "group": "site", "x": "month", "rate": "rate"}
    df = pd.DataFrame(
        {"site": list("ABCDE"), "month": months(1).repeat(5).to_numpy(), "rate": [0.1, 0.2, 0.3, 0.4, np.nan]}
    )
    assert summary(chart, df, "By site") == (
        "By site: highest 40% (D, Jan 2025), lowest 10% (A, Jan 2025); 1 of 5 values hidden."
    )


def test_heatmap_rows_are_a_series_and_sankey_links_are_categories():
    heat = {"kind": "rate_heatmap", "x": "week", "y": "admit_month", "z": "attendance_rate"}
    df = pd.DataFrame(
        {
            "week": [1, 2, 1, 2],
            "admit_month": months(2).repeat(2).to_numpy(),
            "attendance_rate": [0.9, 0.5, np.nan, 0.7],
        }
    )
    text = summary(heat, df, "Heatmap")
    assert text.startswith("Heatmap: Jan 2025 50% at week 2, 40 points below week 1; Feb 2025 70% at week 2")
    assert text.endswith("1 of 4 values hidden.")
    sankey = {"kind": "sankey", "source": "source", "target": "target", "value": "moves"}
    df = pd.DataFrame({"source": ["residential", "iop"], "target": ["iop", "op"], "moves": [120, np.nan]})
    assert summary(sankey, df, "Paths") == "Paths: 120 (Residential to IOP); 1 of 2 values hidden."
