"""Views made ahead for other sites (outcomes/web/prefetch.py): which choices, that a change of sites then runs
no query, and that a view the checks refuse is still refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from outcomes.catalog import runner
from outcomes.present import charts
from outcomes.web import prefetch

ROOT = Path(__file__).resolve().parents[1]


def test_site_choices_are_every_other_choice_nearest_first():
    sites = ["Riverside", "Eastgate", "Northside"]
    assert prefetch.site_choices(sites, None) == [
        ("Eastgate",),
        ("Northside",),
        ("Riverside",),
        ("Eastgate", "Northside"),
        ("Eastgate", "Riverside"),
        ("Northside", "Riverside"),
    ]
    assert prefetch.site_choices(sites, ["Riverside"])[:3] == [None, ("Eastgate",), ("Northside",)]
    assert prefetch.site_choices(sites, sites)[0] == ("Eastgate",)  # every site chosen is all sites
    many = [f"S{i}" for i in range(6)]
    assert prefetch.site_choices(many, ["S0"]) == [None] + [(s,) for s in many[1:]]


def test_swap_sites_sets_or_drops_the_sites_value():
    args = ("q", (("grain", "auto"), ("sites", ("A",))), "v", None)
    assert prefetch.swap_sites(args, ("B", "C")) == ("q", (("grain", "auto"), ("sites", ("B", "C"))), "v", None)
    assert prefetch.swap_sites(args, None) == ("q", (("grain", "auto"),), "v", None)


@pytest.fixture
def ahead(monkeypatch):
    monkeypatch.setenv("OUTCOMES_PREFETCH", "1")  # the suite turns it off elsewhere (conftest.py)
    st.cache_data.clear()
    st.cache_resource.clear()
    prefetch.clear()
    yield
    prefetch.idle(120)
    prefetch.clear()


def _page(db_path, monkeypatch, page: str) -> AppTest:
    monkeypatch.setenv("OUTCOMES_DB", str(db_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("page", ["pages/stepdown.py", "pages/overview.py", "pages/engagement.py"])
def test_after_the_page_is_idle_a_change_of_sites_runs_no_query_and_builds_no_figure(
    demo_db_path, monkeypatch, ahead, page
):
    at = _page(demo_db_path, monkeypatch, page)
    assert prefetch.idle(120)
    ran, built = [], []
    real, real_figure = runner.run, charts.figure
    monkeypatch.setattr(runner, "run", lambda con, query, *a, **k: ran.append(query.name) or real(con, query, *a, **k))
    monkeypatch.setattr(
        charts, "figure", lambda spec, *a, **k: built.append(spec["kind"]) or real_figure(spec, *a, **k)
    )
    shown = {}
    for choice in (["Riverside"], ["Eastgate", "Northside"]):
        at.multiselect(key="sites").set_value(choice)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        shown[tuple(choice)] = _drawn(at)
        assert prefetch.idle(120)
    assert ran == []  # every query of both views was cached before it was asked for
    assert built == []  # nor built a chart
    # and the pages drawn from it are the pages drawn without it
    monkeypatch.setattr(runner, "run", real)
    monkeypatch.setattr(charts, "figure", real_figure)
    monkeypatch.setenv("OUTCOMES_PREFETCH", "0")
    st.cache_data.clear()
    st.cache_resource.clear()
    for choice, drawn in shown.items():
        at = _page(demo_db_path, monkeypatch, page)
        at.multiselect(key="sites").set_value(list(choice))
        at.run()
        assert _drawn(at) == drawn


def _drawn(at: AppTest) -> tuple:
    """What a page showed: its captions, tiles and charts (figure, text alternative)."""
    charts_shown = [(c.proto.spec, c.proto.alt) for c in at.get("plotly_chart")]
    return [c.value for c in at.caption], [(m.label, m.value) for m in at.metric], charts_shown


def test_a_view_made_ahead_that_the_checks_refuse_is_still_refused(headline_db, monkeypatch, ahead):
    """The headline fixture: Northside 13 clients, Southside 9; Northside alone leaves Southside's 9 out."""
    at = _page(headline_db, monkeypatch, "pages/stepdown.py")
    assert prefetch.idle(120)
    at.multiselect(key="sites").set_value(["Northside"])
    at.run()
    assert any(i.value.startswith("Nothing to show: the site filter") for i in at.info)
    assert not at.get("plotly_chart")


@pytest.fixture(scope="module")
def headline_db(tmp_path_factory):
    import datetime as dt

    from outcomes.ingest.loader import load

    path = tmp_path_factory.mktemp("headline") / "headline.duckdb"
    load(ROOT / "tests" / "fixtures" / "headline", path, dt.date(2025, 6, 30))
    return path
