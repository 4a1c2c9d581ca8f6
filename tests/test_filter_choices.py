"""The sidebar's client-group filters offer only values held at the user's sites, small ones grouped as "Other"."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_tools import AUTH
from streamlit.testing.v1 import AppTest

from outcomes.present import labels
from outcomes.web import filter_choices

ROOT = Path(__file__).resolve().parents[1]
SITE = "Eastgate"
ROLES = f'[users."director@example.org"]\nrole = "director"\nsites = ["{SITE}"]\n'
USER = {"is_logged_in": True, "email": "director@example.org", "email_verified": True}


@pytest.fixture
def director(demo_db_path, tmp_path, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    monkeypatch.setenv("OUTCOMES_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets = {"auth": AUTH, "roles_file": str(roles)}
    at.user = USER
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _held(con, column: str, site: str | None) -> dict[str, int]:
    where = f"where site = '{site}'" if site else ""
    rows = con.execute(
        f"select {column}, count(distinct client_id) from episodes {where} group by 1 having {column} is not null"
    ).fetchall()
    return {str(v): n for v, n in rows}


def test_one_site_user_sees_only_their_values_and_small_ones_as_other(director, demo_db):
    for key, column in (("genders", "gender"), ("payers", "payer"), ("age_bands", "age_band")):
        mine = _held(demo_db, column, SITE)
        expected = sorted(v for v, n in mine.items() if n >= 11)
        if any(n <= 10 for n in mine.values()):
            expected.append(filter_choices.OTHER)
        # the widget shows the readable labels, in the order of the stored values
        assert director.multiselect(key=key).options == [labels.value(v) for v in expected], key
    # at Eastgate 3 clients are nonbinary (held at other sites too): offered only within Other
    assert _held(demo_db, "gender", SITE)["nonbinary"] == 3
    assert labels.value("nonbinary") not in director.multiselect(key="genders").options


def test_other_alone_is_a_view_of_fewer_than_11_and_shows_nothing(director):
    director.multiselect(key="genders").select(labels.value(filter_choices.OTHER)).run()
    assert not director.exception, [e.value for e in director.exception]
    assert any("Too few clients" in i.value or "Nothing to show" in i.value for i in director.info)
    assert not director.get("plotly_chart") and not director.metric
    # the page says which filters are on without naming the small group
    said = " ".join(c.value for c in director.caption)
    assert "Gender: Other" in said and "nonbinary" not in said
