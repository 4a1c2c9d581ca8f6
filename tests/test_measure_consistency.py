"""Measures agree with each other where they must, on the demo data."""

import pandas as pd


def _by_month(df, count):
    return df.set_index("month")[["eligible_discharges", count]]


def test_longer_step_down_window_never_counts_fewer(demo_db, run_query):
    windows = {w: _by_month(run_query(demo_db, "stepdown_rate", window_days=w), "stepped_down") for w in (7, 14, 30)}
    for short, long in ((7, 14), (14, 30)):
        both = windows[short].join(windows[long], how="inner", suffixes=("_s", "_l"))
        same = both[both.eligible_discharges_s == both.eligible_discharges_l]  # months with complete windows for both
        assert len(same) > 6
        assert (same.stepped_down_l >= same.stepped_down_s).all()
        assert (same.stepped_down_l > same.stepped_down_s).any()


def test_longer_follow_up_window_never_counts_fewer(demo_db, run_query):
    short = _by_month(run_query(demo_db, "fui_followup", window_days=7), "followed_up")
    long = _by_month(run_query(demo_db, "fui_followup", window_days=30), "followed_up")
    both = short.join(long, how="inner", suffixes=("_s", "_l"))
    same = both[both.eligible_discharges_s == both.eligible_discharges_l]
    assert len(same) > 6 and (same.followed_up_l >= same.followed_up_s).all()


def test_retention_curves_start_at_one_and_never_rise(demo_db, run_query):
    df = run_query(demo_db, "iop_retention")
    for _, curve in df.groupby(["entry_route", "track"], dropna=False):
        curve = curve.sort_values("day")
        first = curve.iloc[0]
        assert first["day"] == 0
        assert first["retained"] == 1.0 or first["dropouts"] > 0
        assert (curve["retained"].diff().dropna() <= 1e-12).all()


def test_time_to_step_down_only_rises_and_matches_its_median(demo_db, run_query):
    df = run_query(demo_db, "time_to_stepdown")
    for _, g in df.groupby("reason_group"):
        g = g.sort_values("day")
        assert (g["cumulative_share"].diff().dropna() >= -1e-12).all()
        assert g["cumulative_share"].between(0, 1).all()
        assert pd.api.types.is_number(g["median_days"].iloc[0]) or pd.isna(g["median_days"].iloc[0])
