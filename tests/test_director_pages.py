"""The director pages (Overview, Step-down, Engagement, Retention, Pathways) and the queries behind them.

Most tests run the real app headless (AppTest) on tests/fixtures/director, described with its hand counts in
its README.md and loaded with as_of 2025-06-30: filters change the numbers on screen to the hand-counted
ones, a URL reproduces a view, hidden cells reach no chart, table or download, the Overview tiles equal
their catalog queries, and the page PDF carries the filters.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from apptest_tools import open_tables
from pypdf import PdfReader
from streamlit.testing.v1 import AppTest

from outcomes.catalog import runner
from outcomes.ingest import db
from outcomes.ingest.loader import load
from outcomes.measures import kpis
from outcomes.measures.stats import kaplan_meier
from outcomes.present import labels
from outcomes.present import pdf as export
from outcomes.privacy import suppress as sup

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "director"
AS_OF = dt.date(2025, 6, 30)
DIRECTOR_PAGES = [
    "pages/overview.py",
    "pages/stepdown.py",
    "pages/engagement.py",
    "pages/retention.py",
    "pages/pathways.py",
]


@pytest.fixture(scope="module")
def director_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("director") / "director.duckdb"
    load(FIXTURE, path, AS_OF)
    return path


@pytest.fixture(scope="module")
def director_con(director_db):
    con = db.connect(director_db)
    yield con
    con.close()


@pytest.fixture
def open_page(director_db, monkeypatch):
    """open_page("pages/x.py", sites="Northside", ...) -> AppTest of that page, as a fresh visit to its URL."""
    import streamlit as st

    def _open(page: str | None = None, database: Path | None = None, **query) -> AppTest:
        monkeypatch.setenv("OUTCOMES_DB", str(database or director_db))
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


# --------------------------------------------------------------------------------------------------------------
# Reading what the app drew
# --------------------------------------------------------------------------------------------------------------


def _array(value):
    """A Plotly 7 JSON array ({"dtype", "bdata"[, "shape"]} or a list) as a flat numpy array."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).ravel()
    return np.asarray(value, dtype=object).ravel()


def figures(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def keyed(at: AppTest) -> dict[str, dict]:
    """{chart key: figure}, e.g. "chart-fui_followup" (a keyed element's id ends with its key)."""
    return {el.proto.id.split("-", 2)[2]: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t.get("name") == name)


def points(fig: dict, name: str) -> dict[str, float]:
    """{"2025-01": y, ...} for the named trace of a monthly chart (missing y left out)."""
    t = trace(fig, name)
    xs, ys = _array(t["x"]), _array(t["y"]).astype(float)
    return {str(x)[:7]: y for x, y in zip(xs, ys) if not math.isnan(y)}


def numbers(fig: dict) -> list[float]:
    """Every number a chart carries in its values, hover data and labels (not its x positions)."""
    out: list[float] = []

    def walk(node, key=None):
        if isinstance(node, dict):
            if "bdata" in node:
                if key not in ("x", "xaxis"):
                    out.extend(float(v) for v in _array(node) if not math.isnan(float(v)))
                return
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif key in ("y", "z", "customdata", "value", "text", "hovertext") and not isinstance(node, bool):
            try:
                out.append(
                    float(str(node).replace(",", "").replace("%", "").strip("()")) / (100 if "%" in str(node) else 1)
                )
            except ValueError:
                pass

    for t in fig["data"]:
        walk(t)
    return out


def metrics(at: AppTest) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.proto.delta) for m in at.metric}


# --------------------------------------------------------------------------------------------------------------
# Overview
# --------------------------------------------------------------------------------------------------------------


def test_periods():
    assert kpis.default_period(dt.date(2025, 10, 31)) == kpis.Period(dt.date(2025, 8, 1), dt.date(2025, 10, 31))
    # data through mid-month: that month is not full yet
    assert kpis.default_period(dt.date(2025, 10, 15)) == kpis.Period(dt.date(2025, 7, 1), dt.date(2025, 9, 30))
    assert kpis.previous_period(kpis.Period(dt.date(2025, 4, 1), dt.date(2025, 6, 30))) == kpis.Period(
        dt.date(2025, 1, 1), dt.date(2025, 3, 31)
    )
    # not whole months: the same number of days just before
    p, default = kpis.period_from(dt.date(2025, 5, 10), dt.date(2025, 6, 20), AS_OF)
    assert not default and kpis.previous_period(p) == kpis.Period(dt.date(2025, 3, 29), dt.date(2025, 5, 9))
    # a To after the data-through date is cut back to it; only From: up to the data-through date
    assert kpis.period_from(None, dt.date(2025, 9, 1), AS_OF)[0].end == AS_OF
    assert kpis.period_from(dt.date(2025, 2, 1), None, AS_OF)[0] == kpis.Period(dt.date(2025, 2, 1), AS_OF)
    assert [q.label() for q in kpis.periods_before(kpis.Period(dt.date(2025, 4, 1), AS_OF), 3)] == [
        "1 Oct – 31 Dec 2024",
        "1 Jan – 31 Mar 2025",
        "1 Apr – 30 Jun 2025",
    ]


# (value, change) per tile; see tests/fixtures/director/README.md
OVERVIEW_ALL = {
    "14-day step-down": ("41.0%", "-15.7 pp"),  # 16/39 against 21/37
    "Days to first IOP": ("3 days", "-7.0 days"),  # median 3 against 10
    "IOP attendance": ("81.2%", "+8.2 pp"),  # 52/64 against 57/78
    "90-day retention": ("too few", ""),  # 28/33, but 5 dropouts (8 gone before day 90) would show: hidden
    "7-day follow-up": ("41.0%", "+41.0 pp"),  # 16/39 against 0/37
    "Residential": ("0", "-39"),
    "IOP": ("41", "+16"),
}
OVERVIEW_NORTHSIDE = {
    "14-day step-down": ("50.0%", "+2.0 pp"),  # 12/24 against 12/25
    "Days to first IOP": ("3 days", "-7.0 days"),
    "IOP attendance": ("75.0%", "-5.0 pp"),  # 36/48 against 48/60
    "90-day retention": ("too few", ""),  # 21/24: 3 dropouts, hidden
    "7-day follow-up": ("50.0%", "+50.0 pp"),  # 12/24 against 0/25
    "Residential": ("0", "-24"),
    "IOP": ("30", "+12"),
}


def test_overview_shows_hand_counted_tiles_and_the_period(open_page):
    at = open_page()
    assert at.title[0].value == "Overview"
    assert metrics(at) == OVERVIEW_ALL
    text = " ".join(m.value for m in at.markdown)
    assert "1 Apr – 30 Jun 2025" in text and "1 Jan – 31 Mar 2025" in text and "last 3 full months" in text
    assert "Data through **30 Jun 2025**" in " ".join(c.value for c in at.caption)


def test_overview_filter_from_the_url_changes_the_tiles(open_page):
    at = open_page(sites="Northside")
    assert at.multiselect(key="sites").value == ["Northside"]
    assert metrics(at) == OVERVIEW_NORTHSIDE


def test_overview_sidebar_dates_set_the_period(open_page):
    at = open_page(start="2025-01-01", end="2025-03-31")
    # Jan-Mar against Oct-Dec 2024, when nobody was discharged
    assert metrics(at)["14-day step-down"] == ("56.8%", "")
    assert "from the sidebar dates" in " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("sites", [None, "first"])
def test_every_tile_equals_its_catalog_query(demo_db_path, demo_db, catalog, open_page, sites):
    site = demo_db.execute("select min(site) from episodes").fetchone()[0]
    query = {"sites": site} if sites else {}
    at = open_page(database=demo_db_path, **query)
    shown = metrics(at)
    through = db.load_info(demo_db)["data_through"]
    period, _ = kpis.period_from(None, None, through)
    periods = kpis.periods_before(period)
    filters = {"sites": [site]} if sites else {}
    for kpi in kpis.KPIS:
        runs = [runner.run(demo_db, catalog[kpi.query], kpi.query_params(p) | filters) for p in periods]
        values = [r.data for r in runs]
        now = values[-1][kpi.value].iloc[0] if len(values[-1]) else None
        before = values[-2][kpi.value].iloc[0] if len(values[-2]) else None
        expected = kpis.format_value(kpi.kind, now)
        if len(values[-1]) and pd.isna(now):  # a hidden value reads by why it is hidden, never as a dash
            expected = "too few" if runs[-1].reasons[kpi.value].iloc[0] == sup.SMALL else "hidden"
        assert shown[kpi.label][0] == expected, kpi.label
        assert shown[kpi.label][1] == (kpis.format_delta(kpi.kind, now, before) or ""), kpi.label
    census = runner.run(demo_db, catalog["census"], kpis.census_params(period) | filters).data
    last = census[census["week_start"] == census["week_start"].max()]
    for level, value in zip(last["level_of_care"], last["active_clients"]):
        # census counts have no sums to protect: a hidden one is always a count of 1-10
        expected = "1–10" if pd.isna(value) else kpis.format_value("count", value)
        assert shown[kpis.LEVEL_LABELS[level]][0] == expected, level


# --------------------------------------------------------------------------------------------------------------
# Step-down and the other pages
# --------------------------------------------------------------------------------------------------------------


def test_stepdown_chart_follows_the_site_filter(open_page):
    everyone = points(figures(open_page("pages/stepdown.py"))[0], "rate")
    assert everyone == pytest.approx({"2025-01": 21 / 37, "2025-04": 16 / 39})
    north = points(figures(open_page("pages/stepdown.py", sites="Northside"))[0], "rate")
    assert north == pytest.approx({"2025-01": 12 / 25, "2025-04": 12 / 24})
    # Southside: 9 of 12 and 4 of 15 stepped down, both hidden
    south = open_page("pages/stepdown.py", sites="Southside")
    assert any("Every value here is hidden" in i.value for i in south.info)


def test_a_url_reproduces_the_view(open_page):
    at = open_page("pages/stepdown.py", sites="Northside", window="7", **{"grain-stepdown_by_site": "month"})
    assert at.multiselect(key="sites").value == ["Northside"]
    assert at.get("button_group")[0].value == [7] or at.subheader[0].value.startswith("7-day")
    assert at.subheader[0].value == "7-day step-down rate by discharge month"
    figs = figures(at)
    assert points(figs[0], "rate") == pytest.approx({"2025-01": 0.0, "2025-04": 0.5})
    # the by-site small multiples hold Northside only, by month
    assert [a["text"] for a in figs[1]["layout"]["annotations"]][:1] == ["Northside"]
    assert "Sites: Northside" in at.caption[0].value


def test_curves_funnel_and_retention_values(open_page):
    at = open_page("pages/stepdown.py", sites="Northside")
    curve = next(f for f in figures(at) if any(t.get("name") == "Completed" for t in f["data"]))
    completed = trace(curve, "Completed")
    days, share = _array(completed["x"]).astype(int), _array(completed["y"]).astype(float)
    # Northside completed discharges: N (24, 12 reach IOP on day 3) and P (25, 12 on day 10); shown to 3 decimals
    assert share[list(days).index(2)] == 0.0 and share[list(days).index(3)] == round(12 / 49, 3) == 0.245
    funnel = next(f for f in figures(at) if f["data"][0]["type"] == "funnel")
    assert [float(v) for v in _array(funnel["data"][0]["x"])] == [24.0, 12.0, 12.0]

    retention = figures(open_page("pages/retention.py"))[0]

    def curve_of(name):  # solid and dotted (fewer than 30 at risk) parts of one curve
        out = {}
        for t in retention["data"]:
            if t.get("name", "").startswith(name) and t.get("mode") == "lines":
                out |= dict(zip(_array(t["x"]).astype(int), _array(t["y"]).astype(float)))
                assert t["line"]["dash"] == "dot"  # 12 or 24 episodes: unstable from day 0
        return out

    # direct (R, 12) never drop out; step-down, day track (P01-P12 and N01-N12, 24): 3 drop out on day 20 and
    # nobody after, so the curve is shown to day 19 and stops: a step at day 20 would tell the 3
    assert set(curve_of("Direct, day").values()) == {1.0}
    ys = curve_of("Step-down, day")
    assert ys[19] == 1.0 and max(ys) == 19


def test_benchmarks_sit_only_on_their_own_charts_and_switch_off(open_page, demo_db_path):
    def lines(fig):
        return [s["y0"] for s in fig["layout"].get("shapes", []) if s.get("type") == "line" and s["y0"] == s["y1"]]

    def fui(at):
        return keyed(at)["chart-fui_followup"]

    at = open_page("pages/stepdown.py")
    figs = figures(at)
    assert lines(figs[0]) == []  # the step-down p-chart has no benchmark
    assert lines(fui(at)) == [0.59] and "Rubinsky" in " ".join(c.value for c in at.caption)
    assert [k for k, f in keyed(at).items() if lines(f)] == ["chart-fui_followup"]
    assert lines(fui(open_page("pages/stepdown.py", fui_window="30"))) == [0.8]
    assert lines(fui(open_page("pages/stepdown.py", va_benchmark="False"))) == []
    retention = open_page("pages/retention.py", database=demo_db_path)
    assert {k: lines(f) for k, f in keyed(retention).items() if lines(f)} == {
        "chart-discharge_outcomes": [0.377]  # on IOP completion only
    }
    assert "TEDS" in " ".join(c.value for c in retention.caption)
    off = open_page("pages/retention.py", database=demo_db_path, teds_benchmark="False")
    assert all(lines(f) == [] for f in figures(off))


def test_empty_and_missing_data_say_so(open_page, tmp_path):
    at = open_page("pages/stepdown.py", start="2025-05-01", end="2025-05-31")
    assert "No residential discharges match these filters." in [i.value for i in at.info]
    at = open_page("pages/stepdown.py", database=tmp_path / "none.duckdb")
    assert "No database is loaded" in at.error[0].value


# --------------------------------------------------------------------------------------------------------------
# Small cells never reach the screen or a file
# --------------------------------------------------------------------------------------------------------------


def _cells(df: pd.DataFrame) -> list[float]:
    out = []
    for v in df.to_numpy().ravel():
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and not pd.isna(v):
            out.append(float(v))
    return out


@pytest.mark.parametrize("page", DIRECTOR_PAGES)
def test_hidden_cells_reach_no_chart_table_or_download(open_page, director_con, catalog, downloads, monkeypatch, page):
    # Southside holds the small groups (4 of 15 stepped down, 9 of 12 ...); on Pathways its one link has 13
    # clients, so the women of Southside (7 of them moved residential -> IOP) make a hidden one
    view = {"sites": "Southside"} | ({"genders": "female"} if "pathways" in page else {})
    ran = []
    real = runner.run

    def recording(con, query, given=None, **kw):
        ran.append((query.name, dict(given or {})))
        return real(con, query, given, **kw)

    monkeypatch.setattr(runner, "run", recording)
    at = open_tables(open_page(page, **view))
    assert at.table, "the page's tables are open"
    hidden, shown = set(), set()
    for name, given in ran:
        raw = real(director_con, catalog[name], given, raw=True).data
        out, mask = sup.suppress(raw, catalog[name].suppress)
        values = [c for c, role in sup.roles(raw, catalog[name].suppress).items() if role != "key"]
        hidden |= {round(float(v), 9) for v in raw[values].where(mask[values]).pipe(_cells)}
        # a shown cell's exact value is no secret even where the screen rounds it (a curve's shown days)
        shown |= {round(v, 9) for v in _cells(out[values]) + _cells(raw[values].where(~mask[values]))}
    secret = hidden - shown - {0.0}
    assert secret, "the fixture should hide something for Southside"
    if page in ("pages/overview.py", "pages/stepdown.py"):
        assert {4.0, round(4 / 15, 9)} <= secret  # 4 of 15 Southside discharges stepped down in April

    def leaks(values):
        return sorted({round(v, 9) for v in values} & secret)

    for fig in figures(at):
        assert not leaks(numbers(fig)), fig["layout"].get("title")
    value_columns = {
        c
        for q in catalog.values()
        for c in [*q.suppress.get("counts", []), *(q.suppress.get("rates") or {}), *(q.suppress.get("stats") or {})]
    }
    value_columns |= {labels.column(c) for c in value_columns}  # the tables head their columns in words
    for frame in at.table:
        shown_frame = frame.value
        text = shown_frame[[c for c in shown_frame.columns if c in value_columns]].astype(str).to_numpy().ravel()
        values = []
        for cell in text:
            cell = cell.replace(",", "")
            try:
                values.append(float(cell.rstrip("%")) / 100 if cell.endswith("%") else float(cell))
            except ValueError:
                pass
        assert not [
            v
            for v in values
            if any(abs(v - s) < (5e-4 if v < 1 else 1e-9) for s in secret if s < 1 or float(v).is_integer())
        ]
    assert downloads, "each table has a CSV download"
    for make in downloads.values():
        payload = make()
        if isinstance(payload, str):
            table = pd.read_csv(io.StringIO(payload))
            assert not leaks(_cells(table[[c for c in table.columns if c in value_columns]]))


# --------------------------------------------------------------------------------------------------------------
# The page as a PDF
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def clicks_register(monkeypatch):
    """AppTest resets Streamlit's "pages/ directory" flag before every run, so a rerun after a click starts in
    the legacy mode that ui.page() answers with st.rerun(), which drops the click. A server decides that once
    per process (st.navigation turns it off). Keep it off here as a server would."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class Navigation(PagesManager):
        pass

    monkeypatch.setattr(app_test, "PagesManager", Navigation)
    monkeypatch.setattr(PagesManager, "uses_pages_directory", False)


def test_pdf_of_a_page_carries_its_filters(open_page, downloads, clicks_register, tmp_path):
    path = tmp_path / "headline.duckdb"
    load(ROOT / "tests" / "fixtures" / "headline", path, AS_OF)
    # not sites=Northside: it leaves out Southside's 9 clients, so the overlap control shows nothing
    at = open_page(database=path, start="2024-01-01")
    assert not [d for d in at.get("download_button") if d.label == "Download page as PDF"]  # made on request only
    at.sidebar.button(key="pdf-prepare").click().run()
    assert not at.exception, [e.value for e in at.exception]
    button = next(d for d in at.get("download_button") if d.label == "Download page as PDF")
    pdf = downloads[button.proto.deferred_file_id]()
    assert pdf.startswith(b"%PDF")
    assert PdfReader(io.BytesIO(pdf)).metadata["/Subject"].startswith("Filters: From: 2024-01-01")


def test_export_stacks_one_page_per_chart():
    import plotly.graph_objects as go

    charts_ = [export.Chart(f"chart {i}", go.Figure(go.Scatter(x=[1, 2], y=[0.2, 0.4])), "n = 40") for i in range(2)]
    data = export.pdf("Step-down", charts_, "Sites: Northside; Gender: female", AS_OF)
    reader = PdfReader(io.BytesIO(data))
    assert data.startswith(b"%PDF") and len(reader.pages) == 3  # a page per chart, then the notice
    assert reader.metadata["/Subject"] == "Filters: Sites: Northside; Gender: female"
    with pytest.raises(ValueError):
        export.pdf("Empty", [], "No filters", AS_OF)


# --------------------------------------------------------------------------------------------------------------
# The queries added for these pages, by hand on the director fixture and against the catalog on the demo
# --------------------------------------------------------------------------------------------------------------

CURRENT = {"start": "2025-04-01", "end": "2025-06-30"}
PREVIOUS = {"start": "2025-01-01", "end": "2025-03-31"}


def one(con, catalog, name, **params) -> dict:
    df = runner.run(con, catalog[name], params, raw=True).data
    assert len(df) == 1
    return {k: (None if pd.isna(v) else v) for k, v in df.iloc[0].items()}


def test_kpi_queries_by_hand(director_con, catalog):
    c = director_con
    assert one(c, catalog, "stepdown_rate", grain="period", **CURRENT) | {"ci_low": 0, "ci_high": 0} == {
        "month": None,
        "eligible_discharges": 39,
        "stepped_down": 16,
        "stepdown_rate": 16 / 39,
        "ci_low": 0,
        "ci_high": 0,
    }
    assert one(c, catalog, "stepdown_rate", grain="period", **PREVIOUS)["stepped_down"] == 21
    assert one(c, catalog, "stepdown_rate", grain="period", window_days=7, **PREVIOUS)["stepped_down"] == 0
    assert one(c, catalog, "stepdown_rate", grain="period", sites="Northside", **CURRENT)["eligible_discharges"] == 24
    d = one(c, catalog, "kpi_days_to_iop", **CURRENT)
    assert (d["eligible_discharges"], d["stepped_down"], d["median_days"]) == (39, 16, 3.0)
    assert one(c, catalog, "kpi_days_to_iop", **PREVIOUS)["median_days"] == 10.0
    a = one(c, catalog, "kpi_iop_attendance", **CURRENT)
    assert (a["scheduled"], a["attended"], a["no_show"]) == (64, 52, 12)
    a = one(c, catalog, "kpi_iop_attendance", sites="Northside", **PREVIOUS)
    assert (a["scheduled"], a["attended"]) == (60, 48)
    r = one(c, catalog, "kpi_iop_retention", start="2025-01-01", end="2025-04-01")
    assert (r["admissions"], r["at_risk"], r["dropouts"]) == (33, 25, 5)
    assert r["retained"] == pytest.approx(28 / 33)
    r = one(c, catalog, "kpi_iop_retention", start="2025-01-01", end="2025-04-01", sites="Northside")
    assert (r["admissions"], r["at_risk"], r["retained"]) == (24, 18, pytest.approx(21 / 24))
    assert runner.run(
        c, catalog["kpi_iop_retention"], {"start": "2024-10-03", "end": "2024-12-31"}, raw=True
    ).data.empty
    f = one(c, catalog, "fui_followup", grain="period", window_days=7, **CURRENT)
    assert (f["eligible_discharges"], f["followed_up"]) == (39, 16)
    assert one(c, catalog, "fui_followup", grain="period", window_days=7, **PREVIOUS)["followed_up"] == 0
    assert one(c, catalog, "fui_followup", grain="period", window_days=30, **PREVIOUS)["followed_up"] == 21
    monthly = runner.run(c, catalog["stepdown_rate"], {}, raw=True).data
    assert [
        (str(m)[:7], e, s)
        for m, e, s in monthly[["month", "eligible_discharges", "stepped_down"]].itertuples(index=False)
    ] == [("2025-01", 37, 21), ("2025-04", 39, 16)]


def test_by_site_and_by_level_queries_by_hand(director_con, catalog):
    df = runner.run(director_con, catalog["stepdown_by_site"], {}, raw=True).data
    assert [tuple(r) for r in df[["site", "eligible_discharges", "stepped_down"]].itertuples(index=False)] == [
        ("Northside", 25, 12),
        ("Northside", 24, 12),
        ("Southside", 12, 9),
        ("Southside", 15, 4),
    ]
    assert [str(p)[:10] for p in df["period"]] == ["2025-01-01", "2025-04-01"] * 2
    shown = runner.run(director_con, catalog["stepdown_by_site"], {}).data
    assert shown["stepped_down"].isna().tolist() == [False, False, True, True]
    df = runner.run(director_con, catalog["discharge_outcomes_by_level"], {}, raw=True).data
    assert [
        tuple(r)
        for r in df[["level_of_care", "discharges", "completed", "left_against_advice"]].itertuples(index=False)
    ] == [("residential", 76, 76, 0), ("iop", 8, 3, 5)]


def test_kpi_queries_agree_with_the_catalog_on_demo_data(demo_db, catalog):
    con = demo_db
    for start, end in (("2025-01-01", "2025-03-31"), ("2024-06-15", "2025-06-14")):
        span = {"start": start, "end": end}
        monthly = runner.run(con, catalog["stepdown_rate"], span, raw=True).data
        total = one(con, catalog, "stepdown_rate", grain="period", **span)
        assert (total["eligible_discharges"], total["stepped_down"]) == (
            monthly["eligible_discharges"].sum(),
            monthly["stepped_down"].sum(),
        )
        monthly = runner.run(con, catalog["fui_followup"], span | {"window_days": 7}, raw=True).data
        total = one(con, catalog, "fui_followup", grain="period", window_days=7, **span)
        assert (total["eligible_discharges"], total["followed_up"]) == (
            monthly["eligible_discharges"].sum(),
            monthly["followed_up"].sum(),
        )
        weekly = runner.run(con, catalog["attendance_weekly"], span, raw=True).data
        total = one(con, catalog, "kpi_iop_attendance", **span)
        assert (total["scheduled"], total["attended"]) == (weekly["scheduled"].sum(), weekly["attended"].sum())
        by_month = runner.run(con, catalog["discharge_outcomes"], span, raw=True).data
        by_level = runner.run(con, catalog["discharge_outcomes_by_level"], span, raw=True).data
        sums = by_month.groupby("level_of_care")[["discharges", "completed", "left_against_advice"]].sum()
        for row in by_level.itertuples():
            assert (row.discharges, row.completed, row.left_against_advice) == tuple(sums.loc[row.level_of_care])
    # retention on day 90 is the Kaplan-Meier estimate over all routes and tracks
    episodes = con.execute(
        """
        select least(coalesce(discharge_date, date '9999-12-31'), $as_of) - admit_date as duration,
               coalesce(discharge_date <= $as_of and discharge_reason not in ('completed', 'transferred'), false)
        from episodes where level_of_care = 'iop' and admit_date between date '2024-11-01' and date '2025-04-30'
    """,
        {"as_of": db.load_info(con)["data_through"]},
    ).fetchall()
    km = kaplan_meier([d for d, _ in episodes], [int(e) for _, e in episodes], times=[90])
    total = one(con, catalog, "kpi_iop_retention", start="2024-11-01", end="2025-04-30")
    assert total["retained"] == pytest.approx(float(km["survival"].iloc[0]))
    assert total["at_risk"] == int(km["at_risk"].iloc[0])
    # the by-site query per month is stepdown_rate for that site
    for site in ("Northside",):
        by_site = runner.run(con, catalog["stepdown_by_site"], {"grain": "month", "sites": [site]}, raw=True).data
        alone = runner.run(con, catalog["stepdown_rate"], {"sites": [site]}, raw=True).data
        assert by_site["stepped_down"].tolist() == alone["stepped_down"].tolist()
        assert by_site["eligible_discharges"].tolist() == alone["eligible_discharges"].tolist()
