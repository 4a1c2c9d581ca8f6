"""site_comparison: the case-mix adjusted site comparison (queries/site_comparison.sql, outcomes/measures/casemix.py).

Known answers on generated data (tests/casemix_data.py, loaded by the real loader into a real DuckDB file), hand
computations of Byar's interval and the funnel limits, the same population and outcome as the measures it
compares, suppression and site scope through the runner, and the path where the model does not converge.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from casemix_data import AS_OF, EASY, HARD, blend, clients, write
from scipy import stats

from outcomes.catalog import runner
from outcomes.catalog.query import CatalogError, parse
from outcomes.ingest import db
from outcomes.ingest.loader import load
from outcomes.measures import casemix, funnel
from outcomes.privacy.suppress import HIGH, LOW

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = [
    "site",
    "eligible",
    "observed",
    "expected",
    "oe_ratio",
    "oe_low",
    "oe_high",
    "raw_rate",
    "adjusted_rate",
    "overall_rate",
    "limit95_low",
    "limit95_high",
    "limit998_low",
    "limit998_high",
    "flag",
]
MODEL_COLUMNS = ["expected", "oe_ratio", "oe_low", "oe_high", "adjusted_rate", "flag"]


def build(tmp_path_factory, name: str, sites: dict, seed: int = 1):
    folder = tmp_path_factory.mktemp(name)
    write(folder / "files", clients(sites, seed))
    load(folder / "files", folder / "db.duckdb", AS_OF)
    return db.connect(folder / "db.duckdb")


def show(df: pd.DataFrame) -> str:
    cols = [
        "site",
        "eligible",
        "observed",
        "expected",
        "oe_ratio",
        "raw_rate",
        "adjusted_rate",
        "overall_rate",
        "limit95_low",
        "limit95_high",
        "limit998_low",
        "limit998_high",
        "flag",
    ]
    return df[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")


@pytest.fixture(scope="module")
def query(catalog):
    return catalog["site_comparison"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Four sites identical in performance (no site effect), from an easy to a hard case mix."""
    con = build(
        tmp_path_factory,
        "mixed",
        {
            "Alder": {"n": 1500, "mix": EASY},
            "Birch": {"n": 1500, "mix": blend(0.35)},
            "Cedar": {"n": 1500, "mix": blend(0.65)},
            "Northside": {"n": 1500, "mix": HARD},
        },
    )
    yield con
    con.close()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Four sites with no site effect and Elm, whose clients have half the odds of stepping down."""
    con = build(
        tmp_path_factory,
        "planted",
        {
            "Alder": {"n": 1500, "mix": EASY},
            "Birch": {"n": 1500, "mix": blend(0.35)},
            "Cedar": {"n": 1500, "mix": blend(0.65)},
            "Dogwood": {"n": 1500, "mix": HARD},
            "Elm": {"n": 600, "mix": blend(0.5), "odds_ratio": 0.5},
        },
        seed=2,
    )
    yield con
    con.close()


# ---------------------------------------------------------------------------------------------------------------
# Known answers on generated data
# ---------------------------------------------------------------------------------------------------------------


def test_same_performance_different_case_mix(mixed, query):
    result = runner.run(mixed, query, {"measure": "stepdown_14"}, raw=True)
    df = result.data
    print("\n" + show(df))
    assert list(df.columns) == CONTRACT and df["site"].tolist() == ["Alder", "Birch", "Cedar", "Northside"]
    assert "Converged" in result.notes[0]
    # raw rates differ, far beyond chance: a chi-square test of one rate for all four sites
    table = np.column_stack([df["observed"], df["eligible"] - df["observed"]])
    assert stats.chi2_contingency(table)[1] < 1e-20
    assert df["raw_rate"].max() - df["raw_rate"].min() > 0.2
    assert ((df["raw_rate"] < df["limit998_low"]) | (df["raw_rate"] > df["limit998_high"])).sum() >= 2
    # adjusted for case mix, every site is where the all-site rate puts it
    assert df["oe_ratio"].between(0.98, 1.02).all()
    assert ((df["adjusted_rate"] > df["limit95_low"]) & (df["adjusted_rate"] < df["limit95_high"])).all()
    assert (df["flag"] == "within").all()
    assert np.isclose(df["expected"].sum(), df["observed"].sum())  # the model's intercept fits the total


def test_planted_site_effect_is_flagged_below(planted, query):
    df = runner.run(planted, query, {"measure": "stepdown_14"}, raw=True).data
    print("\n" + show(df))
    elm = df.set_index("site").loc["Elm"]
    assert elm["flag"] == "below" and elm["adjusted_rate"] < elm["limit998_low"]
    assert elm["oe_high"] < 1 and 0.55 < elm["oe_ratio"] < 0.8
    others = df[df["site"] != "Elm"]
    assert (others["flag"] == "within").all(), show(others)


def test_one_site_only_has_o_over_e_one(tmp_path_factory, query):
    con = build(tmp_path_factory, "single", {"Northside": {"n": 800, "mix": blend(0.5)}})
    try:
        df = runner.run(con, query, {}, raw=True).data
    finally:
        con.close()
    print("\n" + show(df))
    row = df.iloc[0]
    assert len(df) == 1 and row["oe_ratio"] == pytest.approx(1, abs=1e-9)
    assert row["expected"] == pytest.approx(row["observed"], abs=1e-6)
    assert row["adjusted_rate"] == pytest.approx(row["raw_rate"]) == pytest.approx(row["overall_rate"])
    assert row["oe_low"] < 1 < row["oe_high"] and row["flag"] == "within"


def test_planted_effect_shows_in_every_window(planted, query):
    for measure in ("stepdown_7", "stepdown_30"):
        df = runner.run(planted, query, {"measure": measure}, raw=True).data.set_index("site")
        assert df.loc["Elm", "flag"] == "below", measure
        assert (df.drop("Elm")["flag"] == "within").all(), measure


def test_odds_ratios_recover_the_generating_model(mixed, query):
    """The generator's odds ratios (tests/casemix_data.py COEF) come back, each inside its 95% interval."""
    ors = runner.run(mixed, query, {}, raw=True).details["odds_ratios"].set_index(["factor", "level"])
    print("\n" + ors.to_string(float_format=lambda v: f"{v:.3f}"))
    truth = {
        ("Co-occurring mental health", "yes"): 0.45,
        ("Living situation", "homeless"): 0.35,
        ("Living situation", "sober_living"): 1.4,
        ("Primary substance", "opioids"): 0.6,
        ("Employment", "unemployed"): 0.7,
        ("Prior episodes (365 days)", "2+"): 0.6,
        ("Gender", "male"): 1.0,
        ("Payer", "medicaid"): 1.0,
    }
    for key, value in truth.items():
        row = ors.loc[key]
        if row["note"].startswith("reference"):  # the reference level of a factor with no effect
            continue
        assert row["or_low"] < value < row["or_high"], (key, row.to_dict())
    assert ors.loc[("Co-occurring mental health", "no"), "note"].startswith("reference")


def test_factor_effects_move_the_hard_site_expected_down(mixed, query):
    effects = runner.run(mixed, query, {}, raw=True).details["factor_effects"]
    hard = effects[effects["site"] == "Northside"].set_index("factor")
    # the hard site's clients are more often homeless and co-occurring: adjusting for either lowers its expected
    assert hard.loc["Living situation", "change"] < -20 and hard.loc["Co-occurring mental health", "change"] < -20
    assert hard.loc["Gender", "change"] == pytest.approx(0, abs=3)


# ---------------------------------------------------------------------------------------------------------------
# Hand computations
# ---------------------------------------------------------------------------------------------------------------


def test_byar_by_hand():
    # O = 4, E = 35/11 = 3.181818, z = 1.959964:
    #   low  = 4 (1 - 1/36 - z/(3*2))^3 / E = 4 * 0.6455615^3 / E = 4 * 0.2690380 / E = 1.076152 / 3.181818 = 0.338219
    #   high = 5 (1 - 1/45 + z/(3*sqrt 5))^3 / E = 5 * (0.9777778 + 0.2921740)^3 / E = 5 * 1.2699518^3 / E
    #        = 5 * 2.048150 / E = 10.24075 / 3.181818 = 3.21852
    # O = 0, E = 2: low 0; high = 1 * (1 - 1/9 + z/3)^3 / 2 = (0.8888889 + 0.6533213)^3 / 2 = 3.668046 / 2 = 1.834023
    low, high = funnel.byar([4, 0], [35 / 11, 2])
    assert low == pytest.approx([0.338219, 0.0], rel=1e-5)
    assert high == pytest.approx([3.21852, 1.834023], rel=1e-5)
    # close to the exact (chi-square) interval 1.0899/E .. 10.2416/E for O = 4
    assert low[0] * 35 / 11 == pytest.approx(stats.chi2.ppf(0.025, 8) / 2, rel=0.02)
    assert high[0] * 35 / 11 == pytest.approx(stats.chi2.ppf(0.975, 10) / 2, rel=0.001)
    assert np.isnan(funnel.byar([3], [0])[0][0])


def test_funnel_limits_by_hand():
    # Binomial(10, 0.5): P(R <= r) * 1024 for r = 0..10 is 1, 11, 56, 176, 386, 638, 848, 968, 1013, 1023, 1024.
    # 95%, p = 0.025 (25.6/1024): r_p = 2 (56 >= 25.6 > 11); alpha = (56 - 25.6)/(56 - 11) = 0.675556;
    #   limit = (2 - 0.675556)/10 = 0.1324444
    # p = 0.975 (998.4/1024): r_p = 8 (1013 >= 998.4 > 968); alpha = (1013 - 998.4)/(1013 - 968) = 0.324444;
    #   limit = (8 - 0.324444)/10 = 0.7675556
    # 99.8%, p = 0.001 (1.024/1024): r_p = 1; alpha = (11 - 1.024)/(11 - 1) = 0.9976; limit = 0.00024
    # p = 0.999 (1022.976/1024): r_p = 9; alpha = (1023 - 1022.976)/(1023 - 1013) = 0.0024; limit = 0.89976
    # Binomial(5, 0.5), * 32: 1, 6, 16, 26, 31, 32. p = 0.025 (0.8/32): r_p = 0, alpha = (1 - 0.8)/1 = 0.2,
    #   (0 - 0.2)/5 < 0, clipped to 0; p = 0.975 (31.2/32): r_p = 5, alpha = (32 - 31.2)/(32 - 31) = 0.8,
    #   limit = (5 - 0.8)/5 = 0.84; p = 0.999 (31.968/32): alpha = 0.032, limit = 4.968/5 = 0.9936
    low, high = funnel.funnel_limits(0.5, [10, 5, 0], 0.95)
    assert low[:2] == pytest.approx([0.1324444, 0.0], abs=1e-7)
    assert high[:2] == pytest.approx([0.7675556, 0.84], abs=1e-7)
    low, high = funnel.funnel_limits(0.5, [10, 5], 0.998)
    assert low == pytest.approx([0.00024, 0.0], abs=1e-9)
    assert high == pytest.approx([0.89976, 0.9936], abs=1e-9)
    assert np.isnan(funnel.funnel_limits(0.5, [0], 0.95)[0][0])
    assert funnel.funnel_limits(0.0, [20], 0.95)[1][0] == 0.0


def test_headline_fixture_by_hand(build_db, query):
    """tests/fixtures/headline as of 2025-06-30, 14-day step-down: Northside 7 eligible, 4 stepped down (SD01,
    SD02, SD11-R2, SD15); Southside 4 eligible, 1 stepped down (SD09-R2). No factor level reaches 30 episodes, so
    the model is the intercept alone: overall = 5/11, expected = eligible x 5/11 (Northside 35/11 = 3.181818,
    Southside 20/11 = 1.818182), O/E = 44/35 = 1.257143 and 11/20 = 0.55, adjusted = O/E x 5/11 = the raw rate.
    Byar, Northside: 0.338219 .. 3.21852 (test_byar_by_hand); Southside, O = 1: low = (1 - 1/9 - z/3)^3 / E =
    0.2355676^3 / 1.818182 = 0.013072 / 1.818182 = 0.0071897, high = 2 (1 - 1/18 + z/(3 sqrt 2))^3 / E =
    2 * 1.4064087^3 / 1.818182 = 5.563644 / 1.818182 = 3.06000 (to the 4 decimals of this hand working)."""
    con = build_db("headline", "2025-06-30")
    result = runner.run(con, query, {}, raw=True)
    df = result.data.set_index("site")
    assert df["eligible"].tolist() == [7, 4] and df["observed"].tolist() == [4, 1]
    assert df["expected"].tolist() == pytest.approx([35 / 11, 20 / 11])
    assert df["oe_ratio"].tolist() == pytest.approx([44 / 35, 0.55])
    assert df["adjusted_rate"].tolist() == pytest.approx([4 / 7, 1 / 4])
    assert (df["overall_rate"] == 5 / 11).all()
    assert df["oe_low"].tolist() == pytest.approx([0.338219, 0.0071897], rel=1e-4)
    assert df["oe_high"].tolist() == pytest.approx([3.21852, 3.0600], rel=1e-4)
    assert "intercept only" in result.notes[0]


# ---------------------------------------------------------------------------------------------------------------
# The same population and outcome as the measures compared
# ---------------------------------------------------------------------------------------------------------------

MEASURES = {  # measure -> (query, its parameters, denominator, numerator)
    "stepdown_7": ("stepdown_rate", {"window_days": 7}, "eligible_discharges", "stepped_down"),
    "stepdown_14": ("stepdown_rate", {"window_days": 14}, "eligible_discharges", "stepped_down"),
    "stepdown_30": ("stepdown_rate", {"window_days": 30}, "eligible_discharges", "stepped_down"),
    "followup_7": ("fui_followup", {"window_days": 7}, "eligible_discharges", "followed_up"),
    "followup_30": ("fui_followup", {"window_days": 30}, "eligible_discharges", "followed_up"),
    "iop_completion": ("discharge_outcomes", {}, "discharges", "completed"),
}


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize(
    "filters",
    [{}, {"start": "2024-09-01", "end": "2025-05-31", "payers": "medicaid,commercial", "as_of": "2025-08-31"}],
    ids=["defaults", "filtered"],
)
def test_population_and_outcome_equal_the_measures(demo_db, catalog, query, measure, filters):
    name, extra, den, num = MEASURES[measure]
    df = runner.run(demo_db, query, {"measure": measure} | filters, raw=True).data
    assert len(df) == 3 and df["eligible"].sum() > 100
    for site in df["site"]:
        other = runner.run(demo_db, catalog[name], extra | filters | {"sites": site}, raw=True).data
        if name == "discharge_outcomes":
            other = other[other["level_of_care"] == "iop"]
        row = df.set_index("site").loc[site]
        assert (row["eligible"], row["observed"]) == (other[den].sum(), other[num].sum()), (measure, site)


# ---------------------------------------------------------------------------------------------------------------
# Site scope, suppression, and what leaves the runner
# ---------------------------------------------------------------------------------------------------------------


def test_scoped_run_returns_only_its_sites_with_the_same_expected(mixed, query):
    everything = runner.run(mixed, query, {}).data.set_index("site")
    for scoped in (
        runner.run(mixed, query, {}, scope=("Northside",)),
        runner.run(mixed, query, {"sites": ["Northside", "Alder"]}, scope=("Northside",)),
    ):
        assert scoped.data["site"].tolist() == ["Northside"]
        pd.testing.assert_series_equal(scoped.data.set_index("site").loc["Northside"], everything.loc["Northside"])
        assert set(scoped.details["factor_effects"]["site"]) == {"Northside"}
    assert runner.run(mixed, query, {"sites": ["Alder"]}, scope=("Northside",)).data.empty
    asked = runner.run(mixed, query, {"sites": ["Cedar"]}, raw=True).data  # the sites filter narrows rows, not the fit
    assert (
        asked["expected"].iloc[0]
        == runner.run(mixed, query, {}, raw=True).data.set_index("site").loc["Cedar", "expected"]
    )


def test_only_site_rows_leave_the_runner(mixed, query):
    result = runner.run(mixed, query, {})
    assert list(result.data.columns) == CONTRACT and len(result.data) == 4
    assert set(result.details) == {"model", "odds_ratios", "factor_effects"}
    assert list(result.details["model"].columns) == ["converged", "message", "iterations"]
    assert result.details["model"]["converged"].tolist() == [True]
    assert "site" not in result.details["odds_ratios"] and "episodes" not in result.details["odds_ratios"]
    assert len(result.details["factor_effects"]) == 4 * len(casemix.FACTORS)


def test_the_sql_counts_episodes_by_site_outcome_and_levels(mixed, query):
    values = runner.bind(query, {}, runner.data_through_of(mixed))
    rows, _ = runner.execute(mixed, query.sql, values, None, None)
    keys = ["site", "outcome", *casemix.FACTORS]
    assert not rows.duplicated(keys).any() and (rows["episodes"] > 0).all()
    table = runner.run(mixed, query, {}, raw=True).data.set_index("site")
    by_site = rows.groupby("site")["episodes"].sum()
    assert by_site.to_dict() == table["eligible"].to_dict()
    assert rows[rows["outcome"] == 1].groupby("site")["episodes"].sum().to_dict() == table["observed"].to_dict()
    # the same fit as from one row per episode
    episodes = rows.loc[rows.index.repeat(rows["episodes"])].drop(columns="episodes").reset_index(drop=True)
    assert casemix.post_step(episodes).table.equals(casemix.post_step(rows).table)


def test_a_fit_is_kept_per_load_and_reused_across_sites(tmp_path_factory, query):
    """Changing sites reuses the all-site fit; a reload of the same file path fits again."""
    from outcomes.catalog import model_runs

    model_runs.clear()
    folder = tmp_path_factory.mktemp("kept")
    write(folder / "files", clients({"Alder": {"n": 400, "mix": EASY}, "Birch": {"n": 400, "mix": HARD}}, 3))
    fits = []

    def counted(con, sql, values):
        fits.append(values["measure"])
        return runner.execute(con, sql, values, None, None)[0]

    def run(con, given):
        values = runner.bind(query, given, runner.data_through_of(con))
        every_site = values | {"filters": values["filters"] | {"sites": None}}
        return model_runs.output(con, query, every_site, counted)[0].table

    load(folder / "files", folder / "db.duckdb", AS_OF)
    con = db.connect(folder / "db.duckdb")
    first = run(con, {})
    for given in ({"sites": ["Alder"]}, {"sites": ["Birch"]}, {}):
        pd.testing.assert_frame_equal(run(con, given), first)
    assert fits == ["stepdown_14"]
    run(con, {"measure": "stepdown_30"})
    assert fits == ["stepdown_14", "stepdown_30"]
    con.close()
    write(folder / "other", clients({"Alder": {"n": 400, "mix": EASY}, "Birch": {"n": 400, "mix": HARD}}, 4))
    load(folder / "other", folder / "db.duckdb", AS_OF)  # a reload publishes other data at the same path
    con = db.connect(folder / "db.duckdb")
    assert not run(con, {}).equals(first)
    assert fits == ["stepdown_14", "stepdown_30", "stepdown_14"]
    con.close()


def test_a_new_version_is_fitted_in_the_background(tmp_path_factory, query, monkeypatch):
    """After warm.start, every measure's default view is kept: the page's run fits nothing."""
    from outcomes.catalog import model_runs
    from outcomes.web import warm

    monkeypatch.setenv("OUTCOMES_WARM_FITS", "1")  # the suite turns them off elsewhere (conftest.py)
    model_runs.clear()
    folder = tmp_path_factory.mktemp("warm")
    write(folder / "files", clients({"Alder": {"n": 300, "mix": EASY}, "Birch": {"n": 300, "mix": HARD}}, 5))
    load(folder / "files", folder / "db.duckdb", AS_OF)
    version = db.DataVersion.of(folder / "db.duckdb")
    thread = warm.start(version)
    assert thread is not None and warm.start(version) is None  # once per version
    thread.join(timeout=120)
    assert not thread.is_alive()

    def refuse(con, sql, values):
        raise AssertionError(f"fitted again: {values['measure']}")

    con = db.connect(folder / "db.duckdb")
    try:
        for measure in query.params["measure"].choices:
            values = runner.bind(query, {"measure": measure}, runner.data_through_of(con))
            every_site = values | {"filters": values["filters"] | {"sites": None}}
            out, _ = model_runs.output(con, query, every_site, refuse)
            assert out.table["site"].tolist() == ["Alder", "Birch"]
    finally:
        con.close()


@pytest.fixture(scope="module")
def small_sites(tmp_path_factory):
    """A big site, a site of 8 eligible (hidden), one of 60 with 2 step-downs (observed hidden) and one of 40
    with none (observed 0, shown)."""
    first_two = {"outcome_if": lambda row, seen=itertools.count(): next(seen) < 2}
    none = {"outcome_if": lambda row: False}
    con = build(
        tmp_path_factory,
        "small",
        {
            "Alder": {"n": 900, "mix": blend(0.3)},
            "Birch": {"n": 8, "mix": blend(0.3)},
            "Cedar": {"n": 60, "mix": blend(0.3), **first_two},
            "Dogwood": {"n": 700, "mix": blend(0.6)},
            "Elm": {"n": 40, "mix": blend(0.3), **none},
        },
        seed=3,
    )
    yield con
    con.close()


def test_small_site_row_is_hidden(small_sites, query):
    raw = runner.run(small_sites, query, {}, raw=True).data.set_index("site")
    assert raw.loc["Birch", "eligible"] == 8
    df = runner.run(small_sites, query, {}).data.set_index("site")
    birch = df.loc["Birch"]
    hidden = [c for c in CONTRACT[1:] if c != "observed" or raw.loc["Birch", "observed"] > 0]
    assert birch[hidden].isna().all(), birch.to_dict()
    assert df.loc["Alder"].notna().all()
    shown = df[["eligible", "observed"]].apply(pd.to_numeric).astype("float64")
    assert not ((shown >= LOW) & (shown <= HIGH)).any().any()


def determined(raw: pd.DataFrame, mask: pd.DataFrame) -> list[str]:
    """Hidden counts a reader can solve for, knowing the all-site totals of eligible and observed (from the shown
    all-site rate and counts) and that eligible = observed + rest on every row. Plain linear algebra."""
    unknown = [(i, c) for i in range(len(raw)) for c in ("eligible", "observed") if mask[c].iloc[i]]
    unknown += [(i, "rest") for i in range(len(raw)) if mask["eligible"].iloc[i] or mask["observed"].iloc[i]]
    pos = {u: k for k, u in enumerate(unknown)}
    rows = [[1.0 if (i, c) in pos else 0.0 for i, c in unknown] for c in ("eligible", "observed")]
    for i in range(len(raw)):
        row = np.zeros(len(unknown))
        for c, sign in (("eligible", 1), ("observed", -1), ("rest", -1)):
            if (i, c) in pos:
                row[pos[(i, c)]] = sign
        rows.append(row)
    a = np.array(rows, dtype=float)
    rank = np.linalg.matrix_rank(a)
    out = []
    for (i, c), k in pos.items():
        probe = np.zeros(len(unknown))
        probe[k] = 1
        if np.linalg.matrix_rank(np.vstack([a, probe])) == rank:
            out.append(f"{raw['site'].iloc[i]} {c}")
    return out


def test_hidden_counts_cannot_be_worked_back_from_the_all_site_rate(small_sites, query):
    raw = runner.run(small_sites, query, {}, raw=True).data
    result = runner.run(small_sites, query, {})
    mask = result.mask.set_index(result.data["site"])
    print("\n" + show(raw) + "\n" + mask[["eligible", "observed", "expected", "raw_rate"]].to_string())
    assert raw.set_index("site").loc["Elm", "observed"] == 0 and not mask.loc["Elm", "observed"]  # zero is shown
    assert mask.loc["Birch", "eligible"] and mask.loc["Cedar", "observed"]
    assert not mask["overall_rate"].all()  # the all-site counts are large: the all-site rate is shown
    assert determined(raw, result.mask) == []
    # without the all-site row, Birch's eligible would be the all-site total less the others
    naive = result.mask.copy()
    naive["eligible"] = raw["eligible"].between(LOW, HIGH)
    assert "Birch eligible" in determined(raw, naive)
    # expected follows observed: sum(expected) = sum(observed), so a shown expected beside a hidden observed
    # would give it back
    assert (mask["expected"] >= mask["observed"]).all()


def test_small_all_site_total_hides_the_all_site_rate(build_db, query):
    """Headline fixture: 11 eligible and 5 stepped down in all: the all-site rate, and every value computed from it
    (limits, adjusted rate, flag), is hidden on every row."""
    result = runner.run(build_db("headline", "2025-06-30"), query, {})
    assert result.mask[["overall_rate", "limit95_low", "limit998_high", "adjusted_rate", "flag"]].all().all()
    assert result.data[["overall_rate", "adjusted_rate", "flag"]].isna().all().all()


def test_cli_gives_the_contract(mixed, tmp_path):
    path = mixed.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()[0]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "outcomes",
            "query",
            "site_comparison",
            "--param",
            "measure=stepdown_14",
            "--format",
            "csv",
            "--raw",
            "--db",
            path,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == ",".join(CONTRACT) and [line.split(",")[0] for line in lines[1:]] == [
        "Alder",
        "Birch",
        "Cedar",
        "Northside",
    ]
    assert "note: Case-mix model" in out.stderr and "Converged" in out.stderr


# ---------------------------------------------------------------------------------------------------------------
# When the model cannot be fitted
# ---------------------------------------------------------------------------------------------------------------


def test_perfect_separation_gives_raw_rates_only(tmp_path_factory, query):
    at_home = {"outcome_if": lambda row: row["living_situation"] == "home"}
    con = build(
        tmp_path_factory,
        "separated",
        {"Alder": {"n": 400, "mix": blend(0.3), **at_home}, "Birch": {"n": 400, "mix": blend(0.7), **at_home}},
    )
    try:
        result = runner.run(con, query, {}, raw=True)
    finally:
        con.close()
    df = result.data
    print("\n" + show(df) + "\n" + result.notes[0])
    assert "did not converge" in result.notes[0] and "separation" in result.notes[0]
    assert df[MODEL_COLUMNS].isna().all().all()
    assert df[["eligible", "observed", "raw_rate", "overall_rate", "limit95_low", "limit998_high"]].notna().all().all()
    assert df["raw_rate"].iloc[0] < df["raw_rate"].iloc[1] or df["raw_rate"].iloc[0] > df["raw_rate"].iloc[1]
    assert result.details["factor_effects"].empty
    assert result.details["odds_ratios"]["odds_ratio"].isna().sum() >= 1
    assert result.details["model"]["converged"].tolist() == [False]
    assert result.details["model"]["message"].iloc[0] in result.notes[0]


def test_a_level_where_no_one_steps_down_is_quasi_separated(tmp_path_factory, query):
    never = {"outcome_if": lambda row: row["p"] > 0.5 and row["primary_substance"] != "stimulants"}
    con = build(
        tmp_path_factory,
        "quasi",
        {"Alder": {"n": 600, "mix": blend(0.4), **never}, "Birch": {"n": 600, "mix": blend(0.6), **never}},
    )
    try:
        result = runner.run(con, query, {}, raw=True)
    finally:
        con.close()
    assert "did not converge" in result.notes[0], result.notes
    assert result.data["expected"].isna().all()


def test_one_outcome_for_everyone_cannot_be_fitted():
    rows = pd.DataFrame({"site": ["A"] * 40 + ["B"] * 40, "outcome": 0} | {f: "x" for f in casemix.FACTORS})
    model = casemix.fit(rows)
    assert not model.converged and "same outcome" in model.message
    table = casemix.post_step(rows).table
    assert table["expected"].isna().all() and (table["raw_rate"] == 0).all()


def test_no_eligible_episodes_gives_no_rows(mixed, query):
    result = runner.run(mixed, query, {"start": "2025-06-01"})
    assert result.data.empty and list(result.data.columns) == CONTRACT
    assert result.notes == ["No eligible episodes in this range."]


def test_the_fit_on_patterns_is_statsmodels_irls_on_one_row_per_episode():
    """The fit (Newton's method on binomial patterns of counted rows) gives the estimates and standard errors of
    statsmodels' default fit (IRLS) on one 0/1 row per episode, with the design written here from the coded rows."""
    import statsmodels.api as sm

    rng = np.random.default_rng(11)
    n = 3000
    rows = pd.DataFrame(
        {
            "site": rng.choice(["A", "B", "C"], n),
            "age_band": rng.choice(["18-25", "26-34", "35-44", None], n, p=[0.3, 0.4, 0.25, 0.05]),
            "gender": rng.choice(["female", "male"], n),
            "payer": rng.choice(["medicaid", "commercial", "self_pay"], n, p=[0.6, 0.3, 0.1]),
        }
        | {f: "x" for f in ("primary_substance", "co_occurring_mh", "living_situation", "employment")}
        | {"prior_episodes": rng.choice(["0", "1", "2+"], n, p=[0.7, 0.2, 0.1])}
    )
    logit = -0.4 + 0.5 * (rows["gender"] == "male") - 0.8 * (rows["payer"] == "self_pay")
    rows["outcome"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    counted = rows.groupby(list(rows.columns), dropna=False).size().reset_index(name="episodes")  # as the SQL
    assert len(counted) < n / 2
    model = casemix.fit(counted)
    assert model.converged, model.message

    coded, levels = casemix.prepare(rows)
    estimated = levels[levels["role"] == "estimated"]
    x = np.column_stack(
        [np.ones(n)]
        + [(coded[f].astype(str) == lvl).to_numpy(float) for f, lvl in zip(estimated["factor"], estimated["level"])]
    )
    irls = sm.GLM(rows["outcome"].to_numpy(float), x, family=sm.families.Binomial()).fit()
    assert np.allclose(model.params.to_numpy(), irls.params, rtol=0, atol=1e-8)
    # IRLS takes its standard errors from the weights of its last step, Newton's method at the estimates
    assert np.allclose(model.conf_int.to_numpy(), np.asarray(irls.conf_int()), rtol=0, atol=1e-6)
    # with an intercept, the maximum likelihood fit expects as many outcomes as there were
    cells = casemix.collapse(casemix.prepare(counted)[0])
    assert cells["n"].sum() == n and cells["events"].sum() == rows["outcome"].sum()
    assert casemix.expected_by_site(cells, model).sum() == pytest.approx(rows["outcome"].sum())


def test_levels_under_30_are_merged_into_the_most_common():
    rows = pd.DataFrame(
        {
            "site": "A",
            "outcome": [0, 1] * 50,
            "age_band": ["26-34"] * 60 + ["18-25"] * 31 + ["65+"] * 9,
            "gender": [None] * 35 + ["female"] * 65,
        }
        | {f: "x" for f in list(casemix.FACTORS)[2:]}
    )
    coded, levels = casemix.prepare(rows)
    age = levels[levels["factor"] == "age_band"].set_index("level")
    assert age["role"].to_dict() == {"26-34": "reference", "18-25": "estimated", "65+": "merged"}
    assert (coded.loc[rows["age_band"] == "65+", "age_band"] == "26-34").all()
    gender = levels[levels["factor"] == "gender"].set_index("level")
    assert gender.loc["missing", "role"] == "estimated" and gender.loc["female", "role"] == "reference"


# ---------------------------------------------------------------------------------------------------------------
# The header
# ---------------------------------------------------------------------------------------------------------------


def test_header_names_a_registered_model(tmp_path):
    text = (ROOT / "queries" / "site_comparison.sql").read_text()
    bad = tmp_path / "bad.sql"
    bad.write_text(text.replace("-- model: casemix", "-- model: nosuch"))
    with pytest.raises(CatalogError, match="model must be one of casemix"):
        parse(bad)
    bad.write_text("-- title: t\n-- description: d\n-- model: casemix\nselect 1 as site\n")
    with pytest.raises(CatalogError, match="must take \\$filters"):
        parse(bad)


def test_a_level_determined_by_another_factor_is_aliased_not_fatal():
    rng = np.random.default_rng(5)
    employed = rng.random(600) < 0.5
    rows = pd.DataFrame(
        {
            "site": np.where(rng.random(600) < 0.5, "A", "B"),
            "outcome": (rng.random(600) < np.where(employed, 0.6, 0.3)).astype(int),
            "employment": np.where(employed, "employed", "unemployed"),
            "payer": np.where(employed, "commercial", "medicaid"),
        }
        | {f: "x" for f in casemix.FACTORS if f not in ("employment", "payer")}
    )
    model = casemix.fit(rows)
    assert model.converged, model.message
    roles = model.levels.set_index(["factor", "level"])["role"]
    assert sorted(roles[roles != "reference"].tolist()) == ["aliased", "estimated"]
    table = casemix.site_table(casemix.collapse(casemix.prepare(rows)[0]), model)
    assert table["expected"].sum() == pytest.approx(table["observed"].sum())
    notes = casemix.odds_ratios(model)["note"].tolist()
    assert any(n.startswith("not separately estimable") for n in notes)


# ---------------------------------------------------------------------------------------------------------------
# Figures (outcomes/present/casemix_charts.py), from the suppressed table
# ---------------------------------------------------------------------------------------------------------------


def test_funnel_plot_draws_limits_points_and_names_hidden_sites(small_sites, query):
    from outcomes.present import casemix_charts

    df = runner.run(small_sites, query, {}).data
    fig = casemix_charts.funnel_plot(df)
    names = [t.name for t in fig.data]
    assert names.count("95% limits") == 2 and names.count("99.8% limits") == 2
    shown = df[df["adjusted_rate"].notna()]
    points = [t for t in fig.data if t.mode == "markers" and t.text is not None]
    assert sorted(s for t in points for s in t.text) == sorted(shown["site"])
    hidden = sorted(df.loc[df["adjusted_rate"].isna(), "site"])
    assert hidden and any(n == "Hidden: " + ", ".join(hidden) for n in names)
    labels = {a.text for a in fig.layout.annotations}
    assert set(shown["site"]) <= labels and casemix_charts.HIDDEN_NOTE in labels
    # the 99.8% curve at a site's eligible is its limit998 (the curves are the table's limits)
    low = next(t for t in fig.data if t.name == "99.8% limits")
    row = shown.iloc[0]
    at = np.interp(row["eligible"], low.x, low.y)
    assert at == pytest.approx(row["limit998_low"], abs=0.01)
    assert casemix_charts.funnel_plot(df.assign(overall_rate=np.nan)) is None


def test_rate_comparison_shows_both_rates_with_intervals(planted, query):
    from outcomes.present import casemix_charts

    df = runner.run(planted, query, {}).data
    fig = casemix_charts.rate_comparison(df)
    raw, adj = fig.data
    assert raw.name.startswith("Raw") and adj.name.startswith("Adjusted")
    assert list(raw.text) == df["site"].tolist()[::-1]
    assert np.allclose(adj.x, df["adjusted_rate"].to_numpy()[::-1])
    assert all(v > 0 for v in adj.error_x.array) and all(v > 0 for v in raw.error_x.array)
    hidden = df.assign(raw_rate=np.where(df["site"] == "Elm", np.nan, df["raw_rate"]))
    assert "hidden" in {a.text for a in casemix_charts.rate_comparison(hidden).layout.annotations}


def test_an_odds_ratio_resting_on_a_small_count_is_not_shown():
    # 300 reference episodes with half stepping down; 35 female with 5 step-downs (a small count, so its odds
    # ratio's interval would give it away), 40 on medicaid with 20 (shown)
    n = 375
    rows = pd.DataFrame({"site": ["A", "B"] * (n // 2) + ["A"]} | {f: "x" for f in casemix.FACTORS})
    rows["outcome"] = [k % 2 for k in range(300)] + [1] * 5 + [0] * 30 + [1] * 20 + [0] * 20
    rows.loc[300:334, "gender"] = "female"
    rows.loc[335:, "payer"] = "medicaid"
    model = casemix.fit(rows)
    assert model.converged
    table = casemix.odds_ratios(model).set_index(["factor", "level"])
    female, medicaid = table.loc[("Gender", "female")], table.loc[("Payer", "medicaid")]
    assert female[["odds_ratio", "or_low", "or_high"]].isna().all() and female["note"].startswith("not shown")
    # medicaid: odds 20/20 against the reference 150/150 -> 1, by hand
    assert medicaid["odds_ratio"] == pytest.approx(1.0, abs=1e-6) and medicaid["note"] == "estimated"
    assert not any(ch.isdigit() for ch in female["note"])  # the note names no number either


def test_the_load_keeps_every_default_fit_and_runs_read_it(tmp_path_factory, query, monkeypatch):
    """A load fits each measure's default view into the database; a run after a start reads it (fits nothing)
    and gets what a fit now gives. An edited query, or another view, is fitted."""
    import dataclasses

    from outcomes.catalog import model_runs, model_store
    from outcomes.measures import models

    monkeypatch.setenv("OUTCOMES_LOAD_FITS", "1")  # the suite turns them off elsewhere (conftest.py)
    folder = tmp_path_factory.mktemp("stored")
    write(folder / "files", clients({"Alder": {"n": 300, "mix": EASY}, "Birch": {"n": 300, "mix": HARD}}, 6))
    load(folder / "files", folder / "db.duckdb", AS_OF)
    model_runs.clear()  # as after a server start

    def refuse(con, sql, values):
        raise AssertionError(f"fitted again: {values['measure']}")

    con = db.connect(folder / "db.duckdb")
    try:
        keys = con.execute("select count(distinct key) from model_outputs").fetchone()[0]
        assert keys == len(query.params["measure"].choices)
        for measure in query.params["measure"].choices:
            values = runner.model_values(runner.bind(query, {"measure": measure}, runner.data_through_of(con)))
            stored, _ = model_runs.output(con, query, values, refuse)
            fresh = models.get(query.model)(runner.execute(con, query.sql, values, None)[0], values)
            pd.testing.assert_frame_equal(stored.table, fresh.table)
            assert stored.notes == fresh.notes and stored.total == fresh.total
            assert stored.details.keys() == fresh.details.keys()
            for name, detail in fresh.details.items():
                pd.testing.assert_frame_equal(stored.details[name].frame, detail.frame)
                assert stored.details[name].follows == detail.follows
        edited = dataclasses.replace(query, sql=query.sql + "\n-- edited\n")
        with pytest.raises(AssertionError, match="fitted again"):
            model_runs.output(con, edited, values, refuse)
        assert model_store.read(con, model_store.key(query, values | {"start": AS_OF})) is None
    finally:
        con.close()
