"""The site comparison on screen (outcomes/web/casemix.py): the Step-down and Retention panels, Explore and the
page PDF, run headless (AppTest) on real DuckDB files built by the real loader.

What the app drew is read back from the Plotly spec and checked against the runner's suppressed result and the
funnel limits computed again here: each site a labelled point at its rate, the limit curves, the raw/adjusted
switch, a one-site director's point with the expected of the all-site model, suppression on screen, and the
message when the fit cannot converge.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from apptest_tools import AUTH, open_tables
from casemix_data import AS_OF, EASY, HARD, blend, clients, write
from pypdf import PdfReader
from streamlit.testing.v1 import AppTest

from outcomes.catalog import runner
from outcomes.ingest import db
from outcomes.ingest.loader import load
from outcomes.measures import casemix, funnel

ROOT = Path(__file__).resolve().parents[1]
SITE = "Northside"  # one of the demo generator's sites
ROLES = f"""
[users."director@example.org"]
role = "director"
sites = ["{SITE}"]

[users."admin@example.org"]
role = "admin"
sites = "*"
"""
DIRECTOR = {"is_logged_in": True, "email": "director@example.org", "email_verified": True}
ADMIN = {"is_logged_in": True, "email": "admin@example.org", "email_verified": True}


def built(tmp_path_factory, name: str, sites: dict, seed: int = 1) -> Path:
    folder = tmp_path_factory.mktemp(name)
    write(folder / "files", clients(sites, seed))
    load(folder / "files", folder / "db.duckdb", AS_OF)
    return folder / "db.duckdb"


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """Four sites with no site effect and different case mix, and Elm, whose clients have half the odds."""
    return built(
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


@pytest.fixture(scope="module")
def separated(tmp_path_factory) -> Path:
    """Two sites where exactly the clients living at home step down: perfect separation, no finite fit."""
    at_home = {"outcome_if": lambda row: row["living_situation"] == "home"}
    return built(
        tmp_path_factory,
        "separated",
        {"Alder": {"n": 150, "mix": blend(0.3), **at_home}, "Birch": {"n": 150, "mix": blend(0.7), **at_home}},
    )


@pytest.fixture(scope="module")
def small_sites(tmp_path_factory) -> Path:
    """A site of 8 eligible (hidden) and one of 60 with 2 step-downs (observed hidden) beside two large ones."""
    first_two = {"outcome_if": lambda row, seen=itertools.count(): next(seen) < 2}
    return built(
        tmp_path_factory,
        "small",
        {
            "Alder": {"n": 900, "mix": blend(0.3)},
            "Birch": {"n": 8, "mix": blend(0.3)},
            "Cedar": {"n": 60, "mix": blend(0.3), **first_two},
            "Dogwood": {"n": 700, "mix": blend(0.6)},
        },
        seed=3,
    )


@pytest.fixture
def open_page(monkeypatch, tmp_path):
    """open_page(db, "pages/x.py", user=None, **query) -> AppTest of that page as a fresh visit to its URL;
    with `user`, login is on and the roles above apply."""
    import streamlit as st

    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES)

    def _open(database: Path, page: str, user: dict | None = None, **query) -> AppTest:
        monkeypatch.setenv("OUTCOMES_DB", str(database))
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
        if user is not None:
            at.secrets = {"auth": AUTH, "roles_file": str(roles)}
            at.user = user
        at.query_params.update(query)
        at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


def result(database: Path, catalog, **params):
    con = db.connect(database)
    try:
        return runner.run(con, catalog["site_comparison"], params)
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------------------
# Reading what the app drew
# ---------------------------------------------------------------------------------------------------------------


def _array(value) -> np.ndarray:
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")  # "5, 3" in Plotly 7's JSON
        return arr.reshape([int(v) for v in str(shape).split(",")]) if shape else arr
    return np.asarray(value, dtype=object)


def chart(at: AppTest, key: str) -> dict:
    """The figure of the chart whose key is `key` (e.g. chart-site_comparison-stepdown_14)."""
    found = [el for el in at.get("plotly_chart") if el.proto.id.endswith(f"-{key}")]
    assert len(found) == 1, [el.proto.id for el in at.get("plotly_chart")]
    return json.loads(found[0].proto.spec)


def site_points(fig: dict) -> dict[str, dict]:
    """{site: {"x", "y", "observed", "expected", "group"}} from the marker traces of a funnel plot."""
    out = {}
    for t in fig["data"]:
        if t.get("mode") != "markers" or t.get("x") == [None]:
            continue
        custom = _array(t["customdata"]).astype(float).reshape(-1, 3)
        for site, x, y, row in zip(t["text"], _array(t["x"]), _array(t["y"]), custom):
            out[site] = {"x": float(x), "y": float(y), "observed": row[0], "expected": row[1], "group": t["name"]}
    return out


def limit_curves(fig: dict) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """{"95% limits": [(x, y) low, (x, y) high], "99.8% limits": [...]}."""
    out: dict = {}
    for t in fig["data"]:
        if t.get("mode") == "lines" and t.get("name", "").endswith("% limits"):
            out.setdefault(t["name"], []).append((_array(t["x"]).astype(float), _array(t["y"]).astype(float)))
    return out


def labels(fig: dict) -> set[str]:
    return {a["text"] for a in fig["layout"].get("annotations", [])}


def texts(at: AppTest, kind: str) -> str:
    return " ".join(e.value for e in getattr(at, kind))


def by_site(df) -> dict:
    return {r.site: r for r in df.itertuples(index=False)}


# ---------------------------------------------------------------------------------------------------------------
# Step-down: the funnel plot, the rates beside it, the switch, the window
# ---------------------------------------------------------------------------------------------------------------


def test_stepdown_panel_draws_sites_and_limits(open_page, planted, catalog):
    at = open_page(planted, "pages/stepdown.py")
    expect = result(planted, catalog, measure="stepdown_14").data
    fig = chart(at, "chart-site_comparison-stepdown_14")
    points = site_points(fig)
    rows = by_site(expect)
    assert sorted(points) == ["Alder", "Birch", "Cedar", "Dogwood", "Elm"]
    for site, p in points.items():
        assert p["x"] == rows[site].eligible and p["observed"] == rows[site].observed
        assert p["y"] == pytest.approx(rows[site].adjusted_rate, abs=1e-12)
        assert p["expected"] == pytest.approx(rows[site].expected, abs=1e-9)
    assert points["Elm"]["group"] == "Below 99.8% limits"  # the planted effect, flagged on screen
    assert {p["group"] for s, p in points.items() if s != "Elm"} == {"Within limits"}
    assert set(points) <= labels(fig)  # each point labelled with its site
    overall = float(expect["overall_rate"].iloc[0])
    curves = limit_curves(fig)
    assert set(curves) == {"95% limits", "99.8% limits"}
    for name, coverage in (("95% limits", 0.95), ("99.8% limits", 0.998)):
        (x_low, y_low), (x_high, y_high) = curves[name]
        assert len(x_low) > 50  # a curve, not a pair of lines
        low, high = funnel.funnel_limits(overall, x_low, coverage)
        np.testing.assert_allclose(y_low, low, atol=1e-12)
        np.testing.assert_allclose(y_high, high, atol=1e-12)
        assert np.all(np.diff(y_low[y_low > 0]) >= -1e-9)  # the funnel narrows as eligible grows
    rates = chart(at, "chart-site_comparison-stepdown_14-rates")
    names = [t["name"] for t in rates["data"]]
    assert names == ["Raw rate (95% CI)", "Adjusted rate (95% CI)"]
    raw = rates["data"][0]
    assert list(raw["text"]) == ["Elm", "Dogwood", "Cedar", "Birch", "Alder"]  # the first site on top
    np.testing.assert_allclose(_array(raw["x"]).astype(float), expect["raw_rate"].to_numpy()[::-1], atol=1e-12)
    assert "Case-mix model: Converged in" in texts(at, "caption")
    assert "Outside the 99.8% limits: Elm below" in texts(at, "caption")


def test_switch_plots_raw_rates_and_is_kept_in_the_address(open_page, planted, catalog):
    expect = by_site(result(planted, catalog, measure="stepdown_14").data)
    at = open_page(planted, "pages/stepdown.py")
    before = site_points(chart(at, "chart-site_comparison-stepdown_14"))
    at.segmented_control(key="stepdown_sites").set_value("raw").run()
    after = site_points(chart(at, "chart-site_comparison-stepdown_14"))
    for site in expect:
        assert before[site]["y"] == pytest.approx(expect[site].adjusted_rate, abs=1e-12)
        assert after[site]["y"] == pytest.approx(expect[site].raw_rate, abs=1e-12)
        assert after[site]["group"] == "Site (raw rate)"
    assert any(abs(before[s]["y"] - after[s]["y"]) > 0.02 for s in expect)  # the switch has something to change
    # the follow-up panel has a switch of its own: still adjusted
    fui = site_points(chart(at, "chart-site_comparison-followup_7"))
    assert {p["group"] for p in fui.values()} <= {"Within limits", "Below 99.8% limits", "Above 99.8% limits"}
    shared = open_page(
        planted, "pages/stepdown.py", stepdown_sites="Raw"
    )  # a shared link (the label is in the address) opens the raw view
    assert site_points(chart(shared, "chart-site_comparison-stepdown_14")) == after


def test_measures_follow_the_page_windows(open_page, planted, catalog):
    at = open_page(planted, "pages/stepdown.py", window="30", fui_window="30")
    subheads = texts(at, "subheader")
    assert "Sites compared for case mix: 30-day step-down" in subheads
    assert "Sites compared for case mix: 30-day follow-up" in subheads
    for measure in ("stepdown_30", "followup_30"):
        expect = by_site(result(planted, catalog, measure=measure).data)
        points = site_points(chart(at, f"chart-site_comparison-{measure}"))
        assert {s: p["x"] for s, p in points.items()} == {s: r.eligible for s, r in expect.items()}
        assert {s: p["observed"] for s, p in points.items()} == {s: r.observed for s, r in expect.items()}
    assert not [k for k in (el.proto.id for el in at.get("plotly_chart")) if k.endswith("stepdown_14")]


# ---------------------------------------------------------------------------------------------------------------
# Retention: IOP completion
# ---------------------------------------------------------------------------------------------------------------


def test_retention_page_compares_iop_completion(open_page, demo_db_path, catalog):
    at = open_page(demo_db_path, "pages/retention.py")
    expect = by_site(result(demo_db_path, catalog, measure="iop_completion").data)
    assert "Sites compared for case mix: IOP completion" in texts(at, "subheader")
    points = site_points(chart(at, "chart-site_comparison-iop_completion"))
    assert sorted(points) == sorted(expect) and len(points) == 3
    for site, p in points.items():
        assert (p["x"], p["observed"]) == (expect[site].eligible, expect[site].observed)
        assert p["y"] == pytest.approx(expect[site].adjusted_rate, abs=1e-12)
    assert set(limit_curves(chart(at, "chart-site_comparison-iop_completion"))) == {"95% limits", "99.8% limits"}
    at.segmented_control(key="completion_sites").set_value("raw").run()
    raw = site_points(chart(at, "chart-site_comparison-iop_completion"))
    assert {s: p["y"] for s, p in raw.items()} == pytest.approx({s: r.raw_rate for s, r in expect.items()})


# ---------------------------------------------------------------------------------------------------------------
# The factors behind the expected counts
# ---------------------------------------------------------------------------------------------------------------

DECIMAL = re.compile(r"^\d+\.\d\d$")
INTERVAL = re.compile(r"^\d+\.\d\d–\d+\.\d\d$")
PERCENT = re.compile(r"^([+-]\d+\.\d|0\.0)%$")


def test_factor_tables_hold_odds_ratios_and_no_counts(open_page, planted, catalog):
    at = open_tables(open_page(planted, "pages/stepdown.py"))
    tables = [df.value for df in [*at.table, *at.dataframe]]
    odds = next(t for t in tables if list(t.columns) == ["Factor", "Level", "Odds ratio", "95% interval", "Note"])
    raw = result(planted, catalog, measure="stepdown_14").details["odds_ratios"]
    assert len(odds) == len(raw) and set(odds["Factor"]) == set(casemix.FACTORS.values())
    homeless = odds[(odds["Factor"] == "Living situation") & (odds["Level"] == "homeless")].iloc[0]
    assert float(homeless["Odds ratio"]) == pytest.approx(0.35, abs=0.06)  # the generating model's odds ratio
    low, high = (float(v) for v in homeless["95% interval"].split("–"))
    assert low < float(homeless["Odds ratio"]) < high
    # no counts: odds ratios and intervals are decimals, notes name no number but the merge threshold
    assert all(DECIMAL.match(v) for v in odds["Odds ratio"] if v)
    assert all(INTERVAL.match(v) for v in odds["95% interval"] if v)
    assert {n for note in odds["Note"] for n in re.findall(r"\d+", note)} <= {str(casemix.MIN_LEVEL)}
    effects = next(t for t in tables if list(t.columns)[:1] == ["Factor"] and "Alder" in t.columns)
    assert list(effects.columns) == ["Factor", "Alder", "Birch", "Cedar", "Dogwood", "Elm"]
    assert all(PERCENT.match(v) for col in effects.columns[1:] for v in effects[col])
    living = effects.set_index("Factor").loc["Living situation"]
    assert living["Alder"].startswith("+") and living["Dogwood"].startswith("-")  # easy and hard case mix


def test_hidden_sites_reach_no_chart_or_table(open_page, small_sites, catalog):
    at = open_tables(open_page(small_sites, "pages/stepdown.py"))
    fig = chart(at, "chart-site_comparison-stepdown_14")
    points = site_points(fig)
    assert "Birch" not in points and "Cedar" not in points  # eligible 8; observed 2
    assert any(t.get("name", "").startswith("Hidden: ") and "Birch" in t["name"] for t in fig["data"])
    carried = []
    for key in ("chart-site_comparison-stepdown_14", "chart-site_comparison-stepdown_14-rates"):
        for t in chart(at, key)["data"]:
            if t.get("mode") != "markers":  # the limit curves' x are a grid of sizes, not data
                continue
            for field in ("x", "y", "customdata"):
                if t.get(field) is not None and t.get(field) != [None]:
                    carried += [float(v) for v in _array(t[field]).ravel() if v is not None and not math.isnan(v)]
    assert not [v for v in carried if v == int(v) and 1 <= v <= 10]  # no count of 1-10 in the figures' data
    effects = next(
        t.value for t in [*at.table, *at.dataframe] if "Dogwood" in t.value.columns and "Factor" in t.value.columns
    )
    assert "Birch" not in effects.columns or set(effects["Birch"]) == {"hidden"}
    assert "Cedar" not in effects.columns or set(effects["Cedar"]) == {"hidden"}


# ---------------------------------------------------------------------------------------------------------------
# A one-site director
# ---------------------------------------------------------------------------------------------------------------


def test_one_site_director_sees_their_point_with_the_all_site_expected(open_page, demo_db_path, catalog):
    admin = open_page(demo_db_path, "pages/stepdown.py", user=ADMIN)
    everyone = site_points(chart(admin, "chart-site_comparison-stepdown_14"))
    director = open_page(demo_db_path, "pages/stepdown.py", user=DIRECTOR)
    assert director.multiselect(key="sites").options == [SITE]
    mine = site_points(chart(director, "chart-site_comparison-stepdown_14"))
    assert list(mine) == [SITE] and len(everyone) == 3
    assert mine[SITE] == everyone[SITE]  # the same eligible, rate, observed and expected
    # fitted on Northside alone, expected would equal observed (O/E = 1): it is the all-site model's
    assert mine[SITE]["expected"] != pytest.approx(mine[SITE]["observed"], abs=0.1)
    scoped = result(demo_db_path, catalog, measure="stepdown_14", sites=[SITE])
    assert mine[SITE]["expected"] == pytest.approx(float(scoped.data["expected"].iloc[0]), abs=1e-9)
    fui = site_points(chart(director, "chart-site_comparison-followup_7"))
    assert list(fui) == [SITE]
    rates = chart(director, "chart-site_comparison-stepdown_14-rates")
    assert all(list(t["text"]) == [SITE] for t in rates["data"])


# ---------------------------------------------------------------------------------------------------------------
# A fit that does not converge
# ---------------------------------------------------------------------------------------------------------------


def test_a_fit_that_does_not_converge_shows_raw_rates_and_says_so(open_page, separated, catalog):
    expect = result(separated, catalog, measure="stepdown_14")
    assert expect.data["expected"].isna().all()
    at = open_tables(open_page(separated, "pages/stepdown.py"))
    warnings = [w.value for w in at.warning]
    assert any("did not converge" in w and "separation" in w and "raw rates only" in w for w in warnings), warnings
    points = site_points(chart(at, "chart-site_comparison-stepdown_14"))
    assert {s: p["y"] for s, p in points.items()} == pytest.approx(
        dict(zip(expect.data["site"], expect.data["raw_rate"]))
    )
    assert {p["group"] for p in points.values()} == {"Site (raw rate)"}
    rates = chart(at, "chart-site_comparison-stepdown_14-rates")
    assert [t["name"] for t in rates["data"]] == ["Raw rate (95% CI)"]
    assert not {"adjusted rate hidden", "hidden"} & labels(rates)
    # the switch cannot bring back adjusted rates the model does not have
    at.segmented_control(key="stepdown_sites").set_value("adjusted").run()
    assert {p["group"] for p in site_points(chart(at, "chart-site_comparison-stepdown_14")).values()} == {
        "Site (raw rate)"
    }
    assert "Outside the 99.8% limits" not in texts(at, "caption")


# ---------------------------------------------------------------------------------------------------------------
# Explore and the page PDF
# ---------------------------------------------------------------------------------------------------------------


def test_explore_runs_the_query_with_its_parameters(open_page, planted, catalog):
    at = open_page(planted, "pages/explore.py", q="site_comparison", **{"site_comparison.measure": "followup_30"})
    assert at.selectbox(key="site_comparison.measure").value == "followup_30"
    expect = by_site(result(planted, catalog, measure="followup_30").data)
    points = site_points(chart(at, "chart-explore-site_comparison"))
    assert {s: p["x"] for s, p in points.items()} == {s: r.eligible for s, r in expect.items()}
    assert {s: p["y"] for s, p in points.items()} == pytest.approx({s: r.adjusted_rate for s, r in expect.items()})
    assert "Case-mix model: Converged in" in texts(at, "caption")
    assert chart(at, "chart-explore-site_comparison-rates")["data"]
    assert [b.label for b in at.get("download_button")][-3:] == ["Download CSV", "Download Excel", "Download Parquet"]


@pytest.fixture
def clicks_register(monkeypatch):
    """Keep Streamlit's pages/ directory mode off between AppTest runs, as a server does, so that a click's
    rerun is not answered with a fresh rerun that drops it (see tests/test_director_pages.py)."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class Navigation(PagesManager):
        pass

    monkeypatch.setattr(app_test, "PagesManager", Navigation)
    monkeypatch.setattr(PagesManager, "uses_pages_directory", False)


def test_stepdown_pdf_holds_the_site_comparison(open_page, planted, downloads, clicks_register):
    at = open_page(planted, "pages/stepdown.py")
    drawn = [el.proto.id for el in at.get("plotly_chart")]
    assert sum("site_comparison" in k for k in drawn) == 4  # funnel and rates, for step-down and follow-up
    at.sidebar.button(key="pdf-prepare").click().run()
    assert not at.exception, [e.value for e in at.exception]
    button = next(d for d in at.get("download_button") if d.label == "Download page as PDF")
    reader = PdfReader(io.BytesIO(downloads[button.proto.deferred_file_id]()))
    assert len(reader.pages) == len(drawn) + 1  # a page per chart drawn, the site comparison's too, then the notice
