"""One AppTest smoke test for every page in pages/, on the demo database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))


@pytest.fixture
def app(demo_db_path, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    return at


def test_every_page_is_registered():
    registered = set(re.findall(r'st\.Page\(\s*"([^"]+)"', (ROOT / "app.py").read_text()))
    assert registered == set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders(app, page):
    app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.title, "page has a title"
    if "explore" not in page and "data" not in page:
        assert app.get("plotly_chart") or app.metric, f"{page} shows no chart or metric"


@pytest.mark.parametrize("page", PAGES)
def test_a_page_is_thin(page):
    """A page says which queries it shows, in what order, with a few widgets: no lambdas, no chart building, no
    SQL, no pandas."""
    import ast

    tree = ast.parse((ROOT / page).read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)], f"{page} defines a lambda"
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"streamlit", "outcomes.web", "outcomes.web.report"}, f"{page} imports {sorted(imported)}"
    texts = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [s for s in texts if re.search(r"\bselect\b.+\bfrom\b", s, re.I | re.S)], f"{page} holds SQL"


@pytest.mark.parametrize("page", PAGES)
def test_a_page_places_only_its_own_queries_in_their_order(page, catalog):
    """page.panel("x") on a director page names a query whose header says `page:` this page, in header order,
    so that an analyst's `order` puts a new panel where the docs say."""
    text = (ROOT / page).read_text()
    name = re.search(r'report_page\("(\w+)"', text)
    placed = re.findall(r'page\.panel\("(\w+)"', text)
    if not name:
        assert not placed
        return
    # a query without `page:` is drawn only where a page names it, e.g. site_comparison once per measure
    own = [q for q in placed if catalog[q].page is not None]
    assert all(catalog[q].page == name.group(1) for q in own), [(q, catalog[q].page) for q in own]
    orders = [catalog[q].order for q in own]
    assert orders == sorted(orders) and len(set(orders)) == len(orders), dict(zip(own, orders))
    assert {q.name for q in catalog.values() if q.page == name.group(1)} == set(own), "a built-in query unplaced"
