import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from outcomes.measures.stats import kaplan_meier, median_survival, p_chart, survival_at, wilson

# ---------------------------------------------------------------- Wilson


def test_wilson_hand_worked_8_of_10():
    # p = 0.8, z^2 = 3.841459, 1 + z^2/n = 1.384146
    # centre = (0.8 + 0.192073) / 1.384146 = 0.716740
    # half = 1.959964 / 1.384146 * sqrt(0.8 * 0.2 / 10 + 3.841459 / 400) = 1.416009 * 0.160012 = 0.226578
    low, high = wilson(8, 10)
    assert round(low, 4) == 0.4902
    assert round(high, 4) == 0.9433
    assert isinstance(low, float) and isinstance(high, float)


def test_wilson_extremes_are_exact():
    assert wilson(0, 10)[0] == 0.0
    assert wilson(10, 10)[1] == 1.0
    assert 0 < wilson(0, 10)[1] < 1
    assert 0 < wilson(10, 10)[0] < 1


def test_wilson_n_zero_is_nan():
    low, high = wilson(0, 0)
    assert math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (3, 7), (8, 10), (0, 25), (25, 25), (17, 250), (499, 1000)])
def test_wilson_matches_scipy(k, n):
    ci = sps.binomtest(k, n).proportion_ci(method="wilson")
    assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_vectorised_equals_scalar():
    k = np.array([0, 3, 8, 10, 0])
    n = np.array([10, 7, 10, 10, 0])
    low, high = wilson(k, n)
    assert isinstance(low, np.ndarray)
    for i in range(len(k)):
        lo, hi = wilson(int(k[i]), int(n[i]))
        np.testing.assert_equal([low[i], high[i]], [lo, hi])


def test_wilson_series_keeps_index():
    k = pd.Series([8, 0, 0], index=["jan", "feb", "mar"])
    n = pd.Series([10, 10, 0], index=["jan", "feb", "mar"])
    low, high = wilson(k, n)
    assert list(low.index) == ["jan", "feb", "mar"]
    assert low["jan"] == pytest.approx(0.490162, abs=1e-6)
    assert high["feb"] == pytest.approx(0.277533, abs=1e-6)
    assert np.isnan(low["mar"]) and np.isnan(high["mar"])


def test_wilson_other_z():
    # z = 1 is a ~68% interval, narrower than 95%
    lo68, hi68 = wilson(8, 10, z=1.0)
    lo95, hi95 = wilson(8, 10)
    assert lo95 < lo68 < 0.8 < hi68 < hi95


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson(11, 10)
    with pytest.raises(ValueError):
        wilson(-1, 10)


# ---------------------------------------------------------------- p-chart

EVENTS = [5, 6, 20]
N = [50, 40, 60]


def test_p_chart_hand_worked_plain():
    # p-bar = 31 / 150 = 0.206667; p-bar(1 - p-bar) = 3689 / 22500 = 0.163956
    # n = 50: sigma = sqrt(0.163956 / 50) = 0.057264 -> 0.206667 -/+ 0.171791 = 0.034876, 0.378457
    # n = 40: sigma = sqrt(0.163956 / 40) = 0.064023 -> 0.206667 -/+ 0.192068 = 0.014599, 0.398734
    # n = 60: sigma = sqrt(0.163956 / 60) = 0.052274 -> 0.206667 -/+ 0.156823 = 0.049844, 0.363489
    chart = p_chart(EVENTS, N, method="p")
    assert list(chart.columns) == ["p", "center", "lcl", "ucl", "outside", "sigma_z", "method"]
    np.testing.assert_allclose(chart["p"], [0.1, 0.15, 1 / 3])
    np.testing.assert_allclose(chart["center"], 31 / 150)
    np.testing.assert_allclose(chart["lcl"], [0.034876, 0.014599, 0.049844], atol=1e-6)
    np.testing.assert_allclose(chart["ucl"], [0.378457, 0.398734, 0.363489], atol=1e-6)
    assert not chart["outside"].any()
    assert (chart["method"] == "p").all()
    assert (chart["sigma_z"] == 1.0).all()


def test_p_chart_hand_worked_laney():
    # z = (p - p-bar) / sigma_i = -1.862733, -0.885105, 2.423120
    # moving ranges 0.977629, 3.308224; mean 2.142927; sigma_z = 2.142927 / 1.128 = 1.899758 > 1 with 3 points
    chart = p_chart(EVENTS, N)
    assert (chart["method"] == "laney").all()
    assert chart["sigma_z"].iloc[0] == pytest.approx(1.899758, abs=1e-6)
    # n = 50: 0.206667 + 3 * 0.057264 * 1.899759 = 0.533027; lower limit clips to 0
    assert chart["ucl"].iloc[0] == pytest.approx(0.533027, abs=1e-5)
    assert (chart["lcl"] == 0.0).all()


def test_p_chart_limits_vary_with_n():
    chart = p_chart([10, 10, 10], [50, 100, 400], method="p")
    width = chart["ucl"] - chart["lcl"]
    assert width.iloc[0] > width.iloc[1] > width.iloc[2]


def test_p_chart_flags_point_outside():
    # p-bar = 45 / 600 = 0.075; sigma = sqrt(0.075 * 0.925 / 100) = 0.026339; ucl = 0.154017
    chart = p_chart([5, 5, 5, 5, 20, 5], [100] * 6, method="p")
    assert chart["ucl"].iloc[0] == pytest.approx(0.154017, abs=1e-6)
    assert chart["outside"].tolist() == [False, False, False, False, True, False]
    assert chart["outside"].dtype == bool


def test_p_chart_laney_wider_on_over_dispersed_data():
    # with n = 2000 a month the binomial limits are very tight; month-to-month variation is much larger
    events = [100, 200, 140, 240, 120, 180]
    n = [2000] * 6
    plain = p_chart(events, n, method="p")
    auto = p_chart(events, n)
    assert (auto["method"] == "laney").all()
    assert auto["sigma_z"].iloc[0] > 1
    assert ((auto["ucl"] - auto["lcl"]) > (plain["ucl"] - plain["lcl"])).all()
    assert plain["outside"].sum() > auto["outside"].sum()


def test_p_chart_auto_stays_plain_when_not_over_dispersed():
    chart = p_chart([10, 11, 9, 10], [100] * 4)
    assert (chart["method"] == "p").all()
    assert (chart["sigma_z"] == 1.0).all()


def test_p_chart_auto_needs_three_points():
    assert (p_chart([5, 20], [50, 60])["method"] == "p").all()
    assert (p_chart([5, 20], [50, 60], method="laney")["method"] == "laney").all()


def test_p_chart_forced_laney_falls_back_when_sigma_z_undefined():
    # p-bar = 0, so z (and sigma_z) cannot be computed
    chart = p_chart([0, 0, 0], [10, 20, 30], method="laney")
    assert (chart["method"] == "p").all()
    assert (chart["sigma_z"] == 1.0).all()
    assert (chart["ucl"] == 0.0).all() and not chart["outside"].any()


def test_p_chart_zero_n_rows():
    chart = p_chart([5, 0, 6, 20], [50, 0, 40, 60])
    empty = chart.iloc[1]
    assert np.isnan(empty["p"]) and np.isnan(empty["lcl"]) and np.isnan(empty["ucl"])
    assert not empty["outside"]
    # the empty month is skipped, so the moving ranges are the same as without it
    assert chart["sigma_z"].iloc[0] == pytest.approx(p_chart(EVENTS, N)["sigma_z"].iloc[0])


def test_p_chart_keeps_series_index():
    idx = pd.period_range("2025-01", periods=3, freq="M")
    chart = p_chart(pd.Series(EVENTS, index=idx), pd.Series(N, index=idx))
    assert chart.index.equals(idx)


@pytest.mark.parametrize(
    "events,n,method",
    [([5, 6], [50], "auto"), ([51], [50], "auto"), ([-1], [50], "auto"), ([1], [50], "xbar"), ([np.nan], [50], "p")],
)
def test_p_chart_rejects_bad_input(events, n, method):
    with pytest.raises(ValueError):
        p_chart(events, n, method=method)


# ---------------------------------------------------------------- Kaplan-Meier

# Freireich et al. (1963), 6-MP arm: weeks in remission, 0 = censored
MP6_T = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
MP6_E = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]

# small example worked by hand
#   t  at risk  events  censored  S
#   0     7       0        0      1
#   2     7       1        0      6/7            = 0.857143
#   3     6       1        1      6/7 * 5/6      = 0.714286  (the censored one is still at risk at 3)
#   5     4       1        0      5/7 * 3/4      = 0.535714
#   8     3       1        1      15/28 * 2/3    = 0.357143
#   9     1       0        1      0.357143
SMALL_T = [2, 3, 3, 5, 8, 8, 9]
SMALL_E = [1, 1, 0, 1, 0, 1, 0]


def test_km_small_hand_worked():
    km = kaplan_meier(SMALL_T, SMALL_E)
    assert list(km.columns) == ["time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high"]
    assert km["time"].tolist() == [0, 2, 3, 5, 8, 9]
    assert km["at_risk"].tolist() == [7, 7, 6, 4, 3, 1]
    assert km["events"].tolist() == [0, 1, 1, 1, 1, 0]
    assert km["censored"].tolist() == [0, 0, 1, 0, 1, 1]
    np.testing.assert_allclose(km["survival"], [1, 6 / 7, 5 / 7, 15 / 28, 5 / 14, 5 / 14])


def test_km_small_greenwood_log_log_by_hand():
    # at t = 2: S = 6/7, Greenwood sum = 1 / (7 * 6); se of log(-log S) = sqrt(1/42) / |log S|
    s = 6 / 7
    se = math.sqrt(1 / 42) / abs(math.log(s))
    z = 1.959963984540054
    row = kaplan_meier(SMALL_T, SMALL_E).iloc[1]
    assert row["ci_low"] == pytest.approx(s ** math.exp(z * se))
    assert row["ci_high"] == pytest.approx(s ** math.exp(-z * se))
    assert row["ci_low"] < s < row["ci_high"]


def test_km_6mp_textbook_values():
    km = kaplan_meier(MP6_T, MP6_E).set_index("time")
    expected = {6: 0.8571, 7: 0.8067, 10: 0.7529, 13: 0.6902, 16: 0.6275, 22: 0.5378, 23: 0.4482}
    for t, s in expected.items():
        assert round(km.loc[t, "survival"], 4) == s
    assert km.loc[6, "at_risk"] == 21 and km.loc[6, "events"] == 3 and km.loc[6, "censored"] == 1
    assert km.loc[10, "at_risk"] == 15 and km.loc[23, "at_risk"] == 6
    # published log-log 95% limits (as printed by R survfit, conf.type = "log-log")
    assert round(km.loc[6, "ci_low"], 3) == 0.620 and round(km.loc[6, "ci_high"], 3) == 0.952
    assert round(km.loc[23, "ci_low"], 3) == 0.188 and round(km.loc[23, "ci_high"], 3) == 0.680
    assert median_survival(km.reset_index()) == 23


def test_km_matches_scipy_ecdf():
    t, e = np.array(MP6_T, float), np.array(MP6_E)
    ref = sps.ecdf(sps.CensoredData(uncensored=t[e == 1], right=t[e == 0])).sf
    ci = ref.confidence_interval(0.95, method="log-log")
    km = kaplan_meier(t, e).iloc[1:]
    np.testing.assert_allclose(km["survival"], ref.evaluate(km["time"]))
    np.testing.assert_allclose(km["ci_low"], ci.low.evaluate(km["time"]))
    np.testing.assert_allclose(km["ci_high"], ci.high.evaluate(km["time"]))


def test_km_starts_at_time_zero():
    row = kaplan_meier(SMALL_T, SMALL_E).iloc[0]
    assert row["time"] == 0 and row["survival"] == 1.0 and row["at_risk"] == 7
    assert row["ci_low"] == 1.0 and row["ci_high"] == 1.0


def test_km_events_at_time_zero_share_the_zero_row():
    km = kaplan_meier([0, 0, 1, 2], [1, 0, 1, 0])
    assert km["time"].tolist() == [0, 1, 2]
    assert km.loc[0, "events"] == 1 and km.loc[0, "censored"] == 1
    assert km.loc[0, "survival"] == pytest.approx(0.75)


def test_km_ties_events_before_censoring():
    # one event and one censoring at t = 1: both are at risk, so S = 1 - 1/2, not 1 - 1/1
    km = kaplan_meier([1, 1], [1, 0])
    assert km["at_risk"].tolist() == [2, 2]
    assert km["survival"].tolist() == [1.0, 0.5]


def test_km_all_censored_stays_at_one():
    km = kaplan_meier([3, 5, 5, 8], [0, 0, 0, 0])
    assert (km["survival"] == 1.0).all()
    assert (km["ci_low"] == 1.0).all() and (km["ci_high"] == 1.0).all()
    assert median_survival(km) is None


def test_km_survival_reaching_zero():
    km = kaplan_meier([1, 2], [1, 1])
    assert km["survival"].tolist() == [1.0, 0.5, 0.0]
    assert km["ci_low"].iloc[-1] == 0.0 and km["ci_high"].iloc[-1] == 0.0
    assert km[["ci_low", "ci_high"]].notna().all().all()


def test_km_at_requested_times_is_step_function():
    km = kaplan_meier(MP6_T, MP6_E, times=[20, 0, 5, 10, 40])
    assert km["time"].tolist() == [0, 5, 10, 20, 40]
    np.testing.assert_allclose(km["survival"], [1, 1, 0.752941, 0.627451, 0.448179], atol=1e-6)
    # number still in remission (not yet censored) at each time
    assert km["at_risk"].tolist() == [21, 21, 15, 8, 0]
    # counts in (previous time, this time]
    assert km["events"].tolist() == [0, 0, 5, 2, 2]
    assert km["censored"].tolist() == [0, 0, 3, 4, 5]
    full = kaplan_meier(MP6_T, MP6_E).set_index("time")
    assert km["ci_low"].iloc[2] == full.loc[10, "ci_low"]


def test_survival_at_step_behaviour():
    km = kaplan_meier(SMALL_T, SMALL_E)
    assert survival_at(km, 0) == (1.0, 7)
    assert survival_at(km, 1.5) == (1.0, 7)
    assert survival_at(km, 2) == pytest.approx((6 / 7, 7))
    # just after 3 the event and the censoring at 3 have left the risk set
    assert survival_at(km, 3) == pytest.approx((5 / 7, 6))
    assert survival_at(km, 4) == pytest.approx((5 / 7, 4))
    assert survival_at(km, 100) == pytest.approx((5 / 14, 0))
    assert survival_at(km, -1) == (1.0, 7)


def test_median_survival():
    assert median_survival(kaplan_meier(SMALL_T, SMALL_E)) == 8
    # survival exactly 0.5 counts
    assert median_survival(kaplan_meier([1, 2], [1, 1])) == 1


def test_km_empty_input():
    km = kaplan_meier([], [])
    assert len(km) == 1 and km["at_risk"].iloc[0] == 0 and km["survival"].iloc[0] == 1.0


@pytest.mark.parametrize(
    "durations,events", [([1, 2], [1]), ([-1, 2], [1, 1]), ([np.nan, 2], [1, 1]), ([1, 2], [1, 2])]
)
def test_km_rejects_bad_input(durations, events):
    with pytest.raises(ValueError):
        kaplan_meier(durations, events)


def test_km_rejects_negative_times():
    with pytest.raises(ValueError):
        kaplan_meier(SMALL_T, SMALL_E, times=[-1, 3])
