"""The pages in a director's language: no parameter names on screen, one legend line under each chart that hides
anything, definitions split into plain words and exact rules, the stale-data warning, no filters where they do
nothing, downloads that carry their view. AppTest over the real app on the director fixture."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
from apptest_tools import open_tables
from openpyxl import load_workbook
from streamlit.testing.v1 import AppTest

from outcomes.catalog import runner
from outcomes.ingest import db
from outcomes.ingest.loader import load
from outcomes.present import charts, hidden
from outcomes.privacy import suppress as sup

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "director"
AS_OF = dt.date(2025, 6, 30)
PAGES = [
    "pages/overview.py",
    "pages/stepdown.py",
    "pages/engagement.py",
    "pages/retention.py",
    "pages/pathways.py",
    "pages/explore.py",
]
# What a director should never read: parameter names and the analysts' range notation.
PARAMETER_WORDS = re.compile(r"window_days|as_of|max_day|max_weeks|period_starts|\bgrain\b|\.\.|start/end|_days\b")


@pytest.fixture(scope="module")
def director_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("language") / "director.duckdb"
    load(FIXTURE, path, AS_OF)
    return path


@pytest.fixture
def open_page(director_db, monkeypatch):
    import streamlit as st

    def _open(page: str | None = None, **query) -> AppTest:
        monkeypatch.setenv("OUTCOMES_DB", str(director_db))
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.query_params.update(query)
        if page:
            at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


def _words(node, out: list[str], folded: bool = False) -> None:
    """The text of every title, heading, caption, note and paragraph, outside the folded "Exact rules"."""
    kind = getattr(node, "type", "")
    if kind == "expander" and str(getattr(node, "label", "")).startswith("Exact rules"):
        return
    if kind in ("title", "subheader", "header", "caption", "markdown", "info", "warning", "success"):
        out.append(str(node.value))
    for child in getattr(node, "children", {}).values():
        _words(child, out, folded)


@pytest.mark.parametrize("page", PAGES)
def test_no_parameter_names_on_any_page(open_page, page):
    at = open_page(page, **({"q": "stepdown_rate"} if page.endswith("explore.py") else {}))
    text: list[str] = []
    _words(at._tree, text)
    assert text, "the page has text"
    # code spans name files and commands, which analysts need; the words around them must be plain
    plain = [re.sub(r"`[^`]*`", "", t) for t in text]
    found = sorted({m.group(0) for t in plain for m in PARAMETER_WORDS.finditer(t)})
    assert not found, (found, [t for t in plain if PARAMETER_WORDS.search(t)][:3])


def test_definitions_say_what_it_means_and_fold_the_exact_rules(open_page):
    at = open_page("pages/stepdown.py")
    rules = [e for e in at.expander if e.label == "Exact rules"]
    assert len(rules) >= 5, "every panel folds its exact rules"
    words = " ".join(m.value for m in at.markdown)
    assert "**What it means**" in words
    assert "**3-sigma limits**" in words and "chance alone" in words  # the p-charts' term, explained
    assert "**FUI-aligned**" in words  # in the follow-up chart's title
    inside = " ".join(m.value for e in rules for m in e.markdown)
    assert "window_days" in inside  # the exact rules keep the analysts' terms
    retention = open_page("pages/retention.py")
    assert "**Kaplan–Meier**" in " ".join(m.value for m in retention.markdown)


def test_a_legend_line_under_each_chart_that_hides_anything_and_no_other(open_page, director_db, catalog):
    at = open_page("pages/stepdown.py", sites="Southside")
    captions = [c.value for c in at.caption]
    legends = [c for c in captions if c.startswith(("1–10:", "too few:", "hidden:"))]
    con = db.connect(director_db)
    try:
        expected = 0
        for name, params in (
            ("stepdown_rate", {"window_days": 14}),
            ("stepdown_by_site", {"window_days": 14}),
            ("time_to_stepdown", {"max_day": 30}),
            ("referral_conversion", {}),
            ("referral_not_arrived", {}),
            ("fui_followup", {"window_days": 7}),
        ):
            query = catalog[name]
            if "auto" in (getattr(query.params.get("grain"), "choices", None) or ()):
                params = params | {"grain": "auto"}  # as the page asks: coarsened before anything is hidden
            result = runner.run(con, query, params | {"sites": ["Southside"]})
            keep = result.data.index
            if rows := query.panel.get("rows"):
                for col, value in rows.items():
                    keep = result.data.index[result.data[col] == value]
            if recent := query.panel.get("recent_months"):
                months = sorted(result.data["month"].dropna().unique())[-recent:] if "month" in result.data else []
                keep = [i for i in keep if result.data.loc[i, "month"] in months] if len(months) else keep
            chart = charts.spec(query.chart, {n: p.default for n, p in query.params.items()} | params)
            line = hidden.legend_line(result.reasons.loc[keep], query.suppress, charts.columns(chart))
            expected += bool(line)
    finally:
        con.close()
    assert expected, "the Southside view hides something, so the test means something"
    assert len(legends) == expected
    assert all(sup.COMPLEMENT_NOTE in x or sup.SMALL_NOTE in x or sup.FEW_NOTE in x for x in legends)


def test_stale_data_warning_names_the_date(open_page):
    at = open_page("pages/stepdown.py")
    days = (dt.date.today() - AS_OF).days
    assert any(f"30 June 2025, {days} days ago" in w.value for w in at.warning)
    assert f"({days} days ago)" in " ".join(c.value for c in at.sidebar.caption)


def test_the_data_page_shows_no_filters(open_page):
    at = open_page("pages/data.py")
    assert not at.sidebar.multiselect and not at.sidebar.date_input and not at.sidebar.selectbox
    assert any("Data through" in c.value for c in at.sidebar.caption)
    assert open_page("pages/stepdown.py").sidebar.multiselect, "a report page keeps its filters"


def test_filters_show_readable_labels_and_old_addresses_still_work(open_page):
    at = open_page("pages/stepdown.py", payers="medicaid", living="home")  # a link made before labels
    assert at.multiselect(key="payers").value == ["medicaid"] and at.multiselect(key="living").value == ["home"]
    assert "Payer: Medicaid; Living situation: Home" in at.caption[0].value
    assert at.query_params["payers"] == "Medicaid"  # the address now reads as the box does


def test_a_panel_csv_is_named_for_its_view_and_rounded(open_page, monkeypatch):
    from streamlit.runtime.media_file_manager import MediaFileManager

    made = []
    real = MediaFileManager.add_deferred

    def spy(self, func, mimetype, coordinates, file_name=None, **kw):
        made.append((file_name, func))
        return real(self, func, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    open_page("pages/stepdown.py", sites="Northside")
    names = [n for n, _ in made]
    assert "stepdown_rate_through-2025-06-30_sites-Northside.csv" in names
    text = next(f for n, f in made if n.startswith("stepdown_rate_"))()
    text = text.decode() if isinstance(text, bytes) else text
    rates = [v for line in text.splitlines()[1:] for v in line.split(",") if re.fullmatch(r"0\.\d+", v)]
    assert rates and all(len(v) <= 6 for v in rates), rates[:5]  # at most 4 decimals


def test_explore_excel_carries_an_about_sheet_with_the_view(open_page, downloads):
    at = open_page("pages/explore.py", q="stepdown_rate", sites="Northside")
    catalog_tab = at.tabs[0] if at.tabs else at
    excel = next(b for b in catalog_tab.download_button if b.label == "Download Excel")
    book = load_workbook(io.BytesIO(downloads[excel.proto.deferred_file_id]()))
    assert book.sheetnames == ["Data", "About", "Notice"]
    about = {r[0]: r[1] for r in book["About"].iter_rows(min_row=2, values_only=True)}
    assert about["Data through"] == "30 June 2025"
    assert about["Filters"] == "Sites: Northside"
    assert about["Table"] == "Step-down from residential to IOP"
    assert "1–10" in about["Hidden cells"]
    head = [c.value for c in next(book["Data"].iter_rows(max_row=1))]
    assert head[-1] == "hidden"


def test_tables_show_readable_column_names(open_page):
    at = open_tables(open_page("pages/stepdown.py"))
    columns = {c for frame in [*at.table, *at.dataframe] for c in frame.value.columns}
    assert "Eligible discharges" in columns and "eligible_discharges" not in columns


def test_census_lines_break_at_hidden_weeks(open_page, director_db, catalog):
    import math

    from outcomes.measures import kpis

    at = open_page("pages/overview.py", sites="Southside")
    period, _ = kpis.period_from(None, None, AS_OF)
    con = db.connect(director_db)
    try:
        census = runner.run(con, catalog["census"], kpis.census_params(period) | {"sites": ["Southside"]}).data
    finally:
        con.close()
    broken = 0
    for level, rows in census.sort_values("week_start").groupby("level_of_care"):
        if rows["active_clients"].notna().sum() < 2:
            continue
        tile = next(m for m in at.metric if m.label == kpis.LEVEL_LABELS[level])
        gaps = rows["active_clients"].isna().tolist()
        assert [math.isnan(v) for v in tile.proto.chart_data] == gaps, level  # a gap, never joined over
        broken += any(gaps)
    assert broken, "some level has a hidden week, so the test means something"


def test_the_digest_pages_carry_the_same_legend_line(director_db, catalog):
    from outcomes.present import report

    con = db.connect(director_db)
    try:
        pages = report.stepdown_pages(con, catalog, ["Southside"], AS_OF)
    finally:
        con.close()
    notes = [c.note for c in pages]
    assert any(sup.SMALL_NOTE in n or sup.COMPLEMENT_NOTE in n or sup.FEW_NOTE in n for n in notes), notes
    assert not any("<11" in n or "suppressed" in n for n in notes)
