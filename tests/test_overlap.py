"""Query-overlap control (outcomes/privacy/overlap.py): two views a filter apart must not give back 1-10 clients."""

from __future__ import annotations

import pytest
from cli_tools import run as cli

from outcomes.catalog import runner
from outcomes.privacy import overlap


def _clients(con, catalog, **given) -> int:
    return int(runner.run(con, catalog["population"], given, raw=True).data["clients"].iloc[0])


def _small_band(con, catalog):
    """A site and an age band whose dropping takes 1-10 clients out of that site's view (from the raw counts)."""
    bands = [r[0] for r in con.execute("select value from filter_options where filter = 'age_band'").fetchall()]
    for site in ("Eastgate", "Northside", "Riverside"):
        every = _clients(con, catalog, sites=[site], age_bands=bands)
        for band in bands:
            rest = _clients(con, catalog, sites=[site], age_bands=[b for b in bands if b != band])
            if 1 <= every - rest <= 10:
                return site, bands, band, every, rest
    pytest.fail("the demo holds no age band of 1-10 clients at a site")


def test_all_bands_shown_but_all_but_one_small_band_refused(demo_db, catalog):
    site, bands, band, every, rest = _small_band(demo_db, catalog)
    shown = runner.run(demo_db, catalog["population"], {"sites": [site], "age_bands": bands})
    assert int(shown.data["clients"].iloc[0]) == every
    with pytest.raises(overlap.Differencing, match="age band"):
        runner.run(demo_db, catalog["population"], {"sites": [site], "age_bands": [b for b in bands if b != band]})
    # every suppressed run goes through the check, not only population's
    with pytest.raises(overlap.Differencing):
        runner.run(demo_db, catalog["stepdown_rate"], {"sites": [site], "age_bands": [b for b in bands if b != band]})
    # an analyst's raw run is not a view anyone else sees: it is not refused
    assert _clients(demo_db, catalog, sites=[site], age_bands=[b for b in bands if b != band]) == rest


def test_a_site_list_missing_one_small_site_is_refused(demo_db, catalog):
    site, bands, band, every, rest = _small_band(demo_db, catalog)
    others = [s for s in ("Eastgate", "Northside", "Riverside") if s != site]
    # the small band at the other sites, against the same at every site: the difference is the band at `site`
    wide = _clients(demo_db, catalog, age_bands=[band])
    narrow = _clients(demo_db, catalog, sites=others, age_bands=[band])
    if not 1 <= wide - narrow <= 10:
        pytest.skip("the band's clients at that site also have episodes elsewhere")
    with pytest.raises(overlap.Differencing, match="site"):
        runner.run(demo_db, catalog["population"], {"sites": others, "age_bands": [band]})
    # for a user who may see only the other sites, their list is every site they have: nothing to difference
    scope = tuple(others)
    shown = runner.run(demo_db, catalog["population"], {"sites": others, "age_bands": [band]}, scope=scope)
    assert int(shown.data["clients"].iloc[0]) == narrow


def test_a_wider_view_that_adds_none_or_many_is_shown(demo_db, catalog):
    site, bands, band, every, rest = _small_band(demo_db, catalog)
    # one site out of all: the other sites hold far more than 10 clients
    assert overlap.leaks(demo_db, runner.bind(catalog["population"], {"sites": [site]})["filters"]) == []
    # every band listed leaves nobody out
    assert (
        overlap.leaks(demo_db, runner.bind(catalog["population"], {"sites": [site], "age_bands": bands})["filters"])
        == []
    )


def test_cli_suppressed_output_refuses_the_view(demo_db_path, demo_db, catalog):
    site, bands, band, every, rest = _small_band(demo_db, catalog)
    others = ",".join(b for b in bands if b != band)
    ran = cli("query", "population", "--db", demo_db_path, "--param", f"sites={site}", "--param", f"age_bands={others}")
    assert ran.returncode == 2 and ran.stdout == ""
    assert "leaves out between 1 and 10 clients" in ran.stderr
    ran = cli(
        "query",
        "population",
        "--db",
        demo_db_path,
        "--param",
        f"sites={site}",
        "--param",
        f"age_bands={','.join(bands)}",
    )
    assert ran.returncode == 0 and str(every) in ran.stdout


@pytest.fixture(scope="module")
def headline_db(tmp_path_factory):
    import datetime as dt
    from pathlib import Path

    from outcomes.ingest.loader import load

    path = tmp_path_factory.mktemp("headline") / "headline.duckdb"
    load(Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "headline", path, dt.date(2025, 6, 30))
    return path


@pytest.mark.parametrize("page", ["pages/stepdown.py", "pages/explore.py"])
def test_pages_and_explore_show_nothing_for_a_site_list_missing_a_small_site(headline_db, monkeypatch, page):
    """The headline fixture: Northside 13 clients, Southside 9. Northside alone leaves Southside's 9 out."""
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from outcomes.ingest import db

    con = db.connect(headline_db)
    sites = dict(con.execute("select site, count(distinct client_id) from episodes group by site").fetchall())
    con.close()
    assert sites == {"Northside": 13, "Southside": 9}
    monkeypatch.setenv("OUTCOMES_DB", str(headline_db))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
    at.query_params.update({"sites": "Northside"} | ({"q": "stepdown_rate"} if page.endswith("explore.py") else {}))
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(i.value.startswith("Nothing to show: the site filter") for i in at.info)
    assert not at.get("plotly_chart") and not at.dataframe


def test_counts_from_site_bitmaps_equal_distinct_clients_of_each_view(demo_db, catalog):
    """The view, the view without each active filter and without all of them, counted from per-site client
    bitmaps, equal `population`'s distinct clients of the same views, for site lists and other filters."""
    import datetime as dt
    import itertools

    bands = [r[0] for r in demo_db.execute("select value from filter_options where filter = 'age_band'").fetchall()]
    payers = [r[0] for r in demo_db.execute("select value from filter_options where filter = 'payer'").fetchall()]
    sites = ["Eastgate", "Northside", "Riverside"]
    checked = 0
    for k, window in itertools.product((1, 2, 3), ((None, None), (dt.date(2024, 1, 1), dt.date(2024, 6, 30)))):
        for chosen in itertools.combinations(sites, k):
            for given in ({}, {"age_bands": bands[1:]}, {"age_bands": bands[:2], "payers": payers[:1]}):
                ask = {"sites": list(chosen), **given}
                if window[0]:
                    ask |= {"start": window[0], "end": window[1]}
                values = runner.bind(catalog["population"], ask)
                f = values["filters"]
                wider = overlap._wider(f, None)
                active = [n for n in overlap.COLUMNS if n in wider]
                if not active:
                    continue
                counts = overlap._counts(demo_db, f, wider, active, values.get("start"), values.get("end"), None)
                assert counts["view"] == _clients(demo_db, catalog, **ask), ask
                for name in active:
                    assert counts[name] == _clients(demo_db, catalog, **(ask | {name: None})), (ask, name)
                assert counts["all"] == _clients(demo_db, catalog, **(ask | dict.fromkeys(active))), ask
                checked += 1
    assert checked >= 30
