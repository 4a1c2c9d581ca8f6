"""Every catalog query is documented in the measures reference."""

from pathlib import Path

import pytest

from outcomes.catalog.query import load_catalog

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "measures"
QUERIES = sorted(load_catalog())


@pytest.mark.parametrize("name", QUERIES)
def test_query_has_a_reference_page(name):
    page = DOCS / f"{name}.md"
    assert page.exists(), f"docs/measures/{name}.md is missing"
    text = page.read_text().lower()
    for word in ("numerator", "denominator") if "rate" in text else ():
        assert word in text, f"docs/measures/{name}.md does not state its {word}"


@pytest.mark.parametrize("name", QUERIES)
def test_query_is_listed_in_the_index(name):
    assert f"({name}.md)" in (DOCS / "README.md").read_text(), f"{name} is not listed in docs/measures/README.md"
