"""Signals and program events on the charts, the Overview, the digest and the PDF, on a data set with a planted
shift (tests/signal_data.py, whose docstring works the numbers out by hand)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import signal_data
from streamlit.testing.v1 import AppTest

from outcomes.catalog.query import load_catalog
from outcomes.deliver import digest
from outcomes.ingest import db
from outcomes.ingest.loader import load
from outcomes.measures import kpis

ROOT = Path(__file__).resolve().parents[1]
RUN_MONTHS = [dt.date(2025, m, 1) for m in range(4, 13)]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("planted")
    load(signal_data.write(tmp / "files", signal_data.EVENTS), tmp / "planted.duckdb", signal_data.AS_OF)
    return tmp / "planted.duckdb"


@pytest.fixture(scope="module", autouse=True)
def chart_browser():
    yield
    from outcomes.present import pdf as export

    export.stop()


@pytest.fixture
def open_page(planted, monkeypatch):
    import streamlit as st

    def _open(page: str | None = None, database: Path | None = None, **query) -> AppTest:
        monkeypatch.setenv("OUTCOMES_DB", str(database or planted))
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


def _array(value):
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).ravel()
    return np.asarray(value, dtype=object).ravel()


def figures(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def named(fig: dict, name: str) -> list[dict]:
    return [t for t in fig["data"] if t.get("name") == name]


def months_of(trace: dict) -> list[dt.date]:
    return [pd.Timestamp(x).date() for x in _array(trace["x"])]


def texts(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in [*at.markdown, *at.caption])


def unescape(text: str) -> str:
    return text.replace("\\", "")


# --------------------------------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------------------------------


def test_a_planted_run_is_drawn_and_named_under_the_chart(open_page):
    at = open_page("pages/stepdown.py", sites="Northside")
    rate = figures(at)[0]  # the 14-day step-down p-chart, first on the page
    (band,) = named(rate, "signal: long run")
    assert months_of(band) == RUN_MONTHS
    assert list(_array(band["y"]).astype(float)) == [14 / 40] * 9
    assert not named(rate, "signal: outside limits")
    # the band is behind the rate line, and the sentence is under the chart
    names = [t.get("name") for t in rate["data"]]
    assert names.index("signal: long run") < names.index("rate")
    assert signal_data.SIGNAL in unescape(texts(at))


def test_a_site_without_a_signal_shows_none(open_page):
    at = open_page("pages/stepdown.py", sites="Riverside")
    assert not any(named(f, "signal: long run") or named(f, "signal: outside limits") for f in figures(at))
    assert "Signal" not in unescape(texts(at)).replace("Signals", "")


def test_overview_lists_the_signal_for_the_users_sites(open_page):
    at = open_page(sites="Northside")
    shown = unescape(texts(at))
    assert "Signals this period" in [h.value for h in at.subheader]
    assert "14-day step-down, Northside:** 9 months in a row below the centre line since Apr 2025." in shown
    assert "Riverside" not in shown.replace("Riverside,", "")  # no row for the other site
    at = open_page(sites="Riverside")
    assert "No control-chart signals reach this period." in [i.value for i in at.info]


def test_digest_message_and_pdf_carry_the_signal_sentence(planted):
    from pypdf import PdfReader

    config = digest.parse_digests(
        'timezone = "UTC"\n[[recipients]]\nname = "North"\nemail = "n@example.org"\nrole = "director"\n'
        'sites = ["Northside"]\nschedule = "monthly 1 07:00"\n'
    )
    (north,) = config.recipients
    con = db.connect(planted)
    try:
        built = digest.build(
            con, north, kpis.Period(dt.date(2025, 12, 1), dt.date(2025, 12, 31)), catalog=load_catalog()
        )
        msg = digest.render(built, config, "o@example.org", dt.datetime(2026, 1, 1, 7, tzinfo=dt.UTC))
    finally:
        con.close()
    plain = msg.get_body(("plain",)).get_content()
    assert "14-day step-down, Northside: 9 months in a row below the centre line since Apr 2025." in plain
    assert signal_data.SIGNAL in plain  # under the inline chart
    assert "Riverside" not in plain
    part = next(p for p in msg.walk() if p.get_content_type() == "application/pdf")
    pdf = PdfReader(io.BytesIO(part.get_payload(decode=True)))
    text = " ".join(" ".join(p.extract_text() or "" for p in pdf.pages).split())
    assert signal_data.SIGNAL in text


# --------------------------------------------------------------------------------------------------------------
# Program events (annotations)
# --------------------------------------------------------------------------------------------------------------

ROLES = """
[users."north@example.org"]
role = "director"
sites = ["Northside"]
"""
NORTH_USER = {"is_logged_in": True, "email": "north@example.org", "email_verified": True}
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "x" * 32,
    "client_id": "id",
    "client_secret": "secret",
    "server_metadata_url": "https://login.example.org/.well-known/openid-configuration",
}


def every_text(at: AppTest) -> str:
    """What a page shows or carries: its text elements and every chart's JSON."""
    return unescape(texts(at)) + "\n".join(el.proto.spec for el in at.get("plotly_chart"))


def test_a_northside_director_sees_only_northside_and_all_site_events(planted, tmp_path, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("OUTCOMES_DB", str(planted))
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets = {"auth": AUTH, "roles_file": str(roles)}
    at.user = NORTH_USER
    at.switch_page("pages/stepdown.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    rate = figures(at)[0]
    (marker,) = named(rate, "program event")
    assert months_of(marker) == [dt.date(2025, 3, 1), dt.date(2025, 6, 1)]
    lines = [s for s in rate["layout"]["shapes"] if s["type"] == "line"]
    assert sorted(pd.Timestamp(s["x0"]).date() for s in lines) == [dt.date(2025, 3, 1), dt.date(2025, 6, 1)]
    assert not [s for s in rate["layout"]["shapes"] if s["type"] == "rect"]  # Riverside's span is not drawn
    shown = every_text(at)
    for line in signal_data.NORTH_EVENTS:
        assert line in unescape(texts(at))
    assert "Counsellor posts vacant" not in shown and "Riverside" not in shown


def test_a_span_is_a_band_on_its_own_sites_charts(open_page):
    at = open_page("pages/stepdown.py", sites="Riverside")
    rate = figures(at)[0]
    (band,) = [s for s in rate["layout"]["shapes"] if s["type"] == "rect"]
    assert pd.Timestamp(band["x0"]).date() == dt.date(2024, 6, 1)
    assert pd.Timestamp(band["x1"]).date() == dt.date(2024, 9, 1)  # through the end of 31 Aug
    (marker,) = named(rate, "program event")
    assert "Counsellor posts vacant" in " ".join(marker["hovertext"])
    assert "Transport to IOP starts" not in every_text(at)
    assert signal_data.RIVER_EVENT in unescape(texts(at))


def test_a_chart_without_a_calendar_axis_gets_no_events(open_page):
    at = open_page("pages/stepdown.py", sites="Northside")
    curves = next(f for f in figures(at) if "Days after discharge" in json.dumps(f["layout"].get("xaxis", {})))
    assert not named(curves, "program event")
    assert [s["x0"] for s in curves["layout"]["shapes"]] == [7, 14, 30]  # its own day marks only


def test_digest_lists_the_recipients_events_only(planted):
    config = digest.parse_digests(
        'timezone = "UTC"\n[[recipients]]\nname = "North"\nemail = "n@example.org"\nrole = "director"\n'
        'sites = ["Northside"]\nschedule = "monthly 1 07:00"\n'
    )
    con = db.connect(planted)
    try:
        period = kpis.Period(dt.date(2025, 6, 1), dt.date(2025, 6, 30))
        built = digest.build(con, config.recipients[0], period, catalog=load_catalog())
    finally:
        con.close()
    assert built.events == ["Event: 1 Jun 2025, all sites: New intake assessment in use"]
    msg = digest.compose(built, config, "o@example.org", dt.datetime(2025, 7, 1, 7, tzinfo=dt.UTC))
    plain = msg.get_body(("plain",)).get_content()
    assert "PROGRAM EVENTS THIS PERIOD\n- 1 Jun 2025, all sites: New intake assessment in use" in plain
    assert "Event: 1 Mar 2025, Northside: Transport to IOP starts (service)" in plain  # under the inline chart
    assert "Counsellor" not in plain and "Riverside" not in plain
    inline = built.inline[0].figure
    assert [pd.Timestamp(x).date() for x in named(inline.to_plotly_json(), "program event")[0]["x"]] == [
        dt.date(2025, 3, 1),
        dt.date(2025, 6, 1),
    ]


def test_an_alert_message_draws_and_lists_the_sites_events(planted):
    from outcomes.deliver import alerts as alerting
    from outcomes.present import report

    config = digest.parse_digests(
        'timezone = "UTC"\n[[recipients]]\nname = "North"\nemail = "n@example.org"\nrole = "director"\n'
        'sites = ["Northside"]\nschedule = "monthly 1 07:00"\n'
    )
    catalog = load_catalog()
    (rule,) = alerting.parse_alerts(
        '[[alerts]]\nname = "run"\nquery = "stepdown_rate"\nrate = "stepdown_rate"\nparams = { window_days = 14 }\n'
        'sites = ["Northside"]\ncondition = "signal"\nrecipients = ["North"]\n',
        "alerts.toml",
        config.by_name(),
        catalog,
    )
    con = db.connect(planted)
    try:
        (reading,) = alerting.evaluate(con, rule, catalog, signal_data.AS_OF)
        events = report.events_in_view(con, catalog, ("Northside",), ["Northside"])
    finally:
        con.close()
    assert reading.holds
    now = dt.datetime(2026, 1, 1, 7, tzinfo=dt.UTC)
    msg = digest.alert_message(
        reading, config.recipients[0], config, "o@example.org", now, "x", signal_data.AS_OF, events
    )
    plain = msg.get_body(("plain",)).get_content()
    assert signal_data.SIGNAL in plain
    for line in signal_data.NORTH_EVENTS:
        assert line in plain
    assert "Counsellor" not in plain and "Riverside" not in plain
