"""Cached query results are keyed on the data version: a reload of the database shows the new numbers at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_tools import open_tables
from streamlit.testing.v1 import AppTest

from outcomes.ingest.demo import generate
from outcomes.ingest.loader import load

ROOT = Path(__file__).resolve().parents[1]


def render(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest) -> list[str]:
    """What the page shows: its tables (opened) and chart data."""
    open_tables(at)
    return [d.value.to_csv() for d in [*at.table, *at.dataframe]] + [c.proto.spec for c in at.get("plotly_chart")]


@pytest.mark.parametrize("page", ["pages/stepdown.py", "pages/engagement.py"])
def test_reload_replaces_cached_results(tmp_path, monkeypatch, page):
    import streamlit as st

    for name, seed in (("a", 11), ("b", 12)):
        generate(tmp_path / name, clients=1200, seed=seed)
    live = tmp_path / "live.duckdb"
    monkeypatch.setenv("OUTCOMES_DB", str(live))
    st.cache_data.clear()
    st.cache_resource.clear()

    load(tmp_path / "a", live)
    at = render(page)
    before = shown(at)
    assert before, "the page shows data"
    at.run()
    assert shown(at) == before, "a rerun on the same data is served from the cache"

    load(tmp_path / "b", live)  # the loader builds a new file and swaps it in; the server is not told
    at.run()
    after = shown(at)
    assert after != before, "the reload's numbers are shown, not the cached ones"

    st.cache_data.clear()
    st.cache_resource.clear()
    assert shown(render(page)) == after, "and they are the new data's numbers, as a fresh server shows them"


def test_a_figure_is_reused_only_when_everything_it_draws_from_is_the_same():
    from outcomes.web.reuse import chart_key

    def chart_for(window):
        return lambda df: ("chart", window, df)

    assert chart_key(chart_for(7)) == chart_key(chart_for(7))
    assert chart_key(chart_for(7)) != chart_key(chart_for(30))
    settings = {"window": 7}
    assert chart_key(lambda df: settings["window"]) is None, "a value that may change in place"
    assert chart_key(lambda df: chart_for(7)(df)) is None, "a helper of the page that may read anything"
    assert chart_key(lambda df: [x for x in df]) is None, "code inside the code"
    assert chart_key(print) is None
