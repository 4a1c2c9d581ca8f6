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
    registered = set(re.findall(r'st\.Page\("([^"]+)"', (ROOT / "app.py").read_text()))
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
def test_a_page_with_panels_ends_by_drawing_them(page):
    """panels.panel only starts its query; pdf.pdf_export() draws the page's panels, so it must be the last call."""
    lines = [line for line in (ROOT / page).read_text().splitlines() if line.strip()]
    if any("panels.panel(" in line for line in lines):
        assert lines[-1].strip() == "pdf.pdf_export()", f"{page} must end with pdf.pdf_export()"
