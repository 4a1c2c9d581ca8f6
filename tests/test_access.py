"""Access: roles file, site scope in the runner, and every page and export for each kind of user (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from apptest_tools import AUTH, open_tables
from streamlit.testing.v1 import AppTest

from outcomes.catalog import runner
from outcomes.catalog.query import CatalogError, load_catalog, parse
from outcomes.present import files
from outcomes.privacy import access, audit

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
VIEW_PAGES = [p for p in PAGES if p != "pages/data.py"]
SITE, OTHERS = "Northside", ["Riverside", "Eastgate"]  # the demo generator's sites

ROLES = f"""
[users."director@example.org"]
role = "director"
sites = ["{SITE}"]

[users."Analyst@Example.org"]
role = "analyst"
sites = "*"

[users."admin@example.org"]
role = "admin"
sites = "*"
"""
DIRECTOR = {"is_logged_in": True, "email": "director@example.org", "email_verified": True}
ANALYST = {"is_logged_in": True, "email": "analyst@example.org", "email_verified": True}
ADMIN = {"is_logged_in": True, "email": "admin@example.org", "email_verified": True}
STRANGER = {"is_logged_in": True, "email": "someone@example.org", "email_verified": True}
SIGNED_OUT = {"is_logged_in": False}


# --- the roles file and permissions (pure) ---------------------------------------------------------------------


def test_roles_file_parses_roles_and_sites():
    grants = access.parse_roles(ROLES)
    assert grants["director@example.org"] == access.Grant("director", (SITE,))
    assert grants["analyst@example.org"] == access.Grant("analyst", None)  # e-mails match without case


@pytest.mark.parametrize(
    "text, message",
    [
        ('[users."a@b.org"]\nrole = "boss"\nsites = "*"', "role must be one of"),
        ('[users."a@b.org"]\nrole = "director"', "sites must be"),
        ('[users."a@b.org"]\nrole = "director"\nsites = []', "sites must be"),
        ('[users."a@b.org"]\nrole = "director"\nsites = "*"\nextra = 1', "takes role and sites only"),
        ('[people."a@b.org"]\nrole = "director"', "unknown sections"),
        (
            '[users."A@b.org"]\nrole = "admin"\nsites = "*"\n[users."a@B.org"]\nrole = "admin"\nsites = "*"',
            "listed twice",
        ),
        ("users = [", "not valid TOML"),
    ],
)
def test_bad_roles_file_is_refused(text, message):
    with pytest.raises(access.RolesError, match=message):
        access.parse_roles(text)


def test_missing_roles_file_grants_nothing(tmp_path):
    assert access.load_roles(tmp_path / "none.toml") == {}
    assert not access.resolve(DIRECTOR, {}).authorised


def test_roles_path_is_read_at_call_time(tmp_path):
    assert access.roles_path(env={}) == access.DEFAULT_ROLES
    assert access.roles_path("elsewhere/roles.toml", env={}) == ROOT / "elsewhere" / "roles.toml"
    assert access.roles_path("x.toml", env={"OUTCOMES_ROLES": str(tmp_path / "r.toml")}) == tmp_path / "r.toml"


def test_resolve_and_permissions():
    grants = access.parse_roles(ROLES)
    director, analyst, admin = (access.resolve(u, grants) for u in (DIRECTOR, ANALYST, ADMIN))
    assert (director.role, director.scope) == ("director", (SITE,))
    assert director.can("view") and director.can("export")
    assert not any(director.can(a) for a in ("adhoc_sql", "raw", "manage_data"))
    assert analyst.can("adhoc_sql") and analyst.can("raw") and not analyst.can("manage_data")
    assert all(admin.can(a) for a in access.ACTIONS) and admin.scope is None
    for nobody in (access.resolve(STRANGER, grants), access.resolve(SIGNED_OUT, grants), access.ANONYMOUS):
        assert not nobody.authorised and nobody.scope == () and not any(nobody.can(a) for a in access.ACTIONS)
    for flag in (False, "false", 0):
        assert not access.resolve(DIRECTOR | {"email_verified": flag}, grants).authorised
    assert access.resolve({"is_logged_in": True, "email": " Director@Example.org "}, grants).role == "director"
    assert access.LOCAL_USER.local and all(access.LOCAL_USER.can(a) for a in access.ACTIONS)
    with pytest.raises(ValueError):
        admin.can("fly")


def test_site_limited_analyst_gets_no_adhoc_or_raw():
    grants = access.parse_roles('[users."a@b.org"]\nrole = "analyst"\nsites = ["Northside"]')
    user = access.resolve({"is_logged_in": True, "email": "a@b.org"}, grants)
    assert user.can("view") and not user.can("adhoc_sql") and not user.can("raw")


@pytest.mark.parametrize(
    "requested, scope, expected",
    [
        (None, None, None),
        (["A"], None, ["A"]),
        (None, ("A", "B"), ["A", "B"]),
        (["B", "C"], ("A", "B"), ["B"]),
        (["C"], ("A",), []),
    ],
)
def test_limit_sites(requested, scope, expected):
    assert access.limit_sites(requested, scope) == expected


# --- the runner applies the scope to every query ----------------------------------------------------------------


@pytest.fixture(scope="module")
def headline(build_db):
    return build_db("headline", "2025-06-30")  # sites Northside and Southside


def test_every_catalog_query_takes_sites_or_is_site_free():
    for query in load_catalog().values():
        assert query.takes("sites") or query.site_free, query.name


@pytest.mark.parametrize("name", sorted(load_catalog()))
def test_scope_equals_the_site_filter(demo_db, catalog, name):
    query = catalog[name]
    scoped = runner.run(demo_db, query, {}, raw=True, scope=("Northside",))
    filtered = runner.run(demo_db, query, {"sites": ["Northside"]}, raw=True)
    pd.testing.assert_frame_equal(scoped.data, filtered.data)
    assert scoped.params["filters"]["sites"] == ["Northside"]


@pytest.mark.parametrize("name", ["stepdown_rate", "engagement_by_week"])
def test_a_scope_changes_the_numbers(headline, catalog, name):
    query = catalog[name]
    scoped = runner.run(headline, query, {}, raw=True, scope=("Northside",))
    assert not scoped.data.equals(runner.run(headline, query, {}, raw=True).data)


def test_scope_overrides_a_request_for_another_site(headline, catalog):
    query = catalog["stepdown_rate"]
    other = runner.run(headline, query, {"sites": ["Southside"]}, raw=True, scope=("Northside",))
    assert other.params["filters"]["sites"] == [] and other.data.empty
    both = runner.run(headline, query, {"sites": ["Southside", "Northside"]}, raw=True, scope=("Northside",))
    assert both.params["filters"]["sites"] == ["Northside"]
    assert runner.run(headline, query, {}, raw=True, scope=()).data.empty  # no sites at all: no rows


def _query(tmp_path, text: str, name: str = "q"):
    path = tmp_path / f"{name}.sql"
    path.write_text(text)
    return parse(path)


def test_query_without_sites_is_refused_under_a_scope(headline, tmp_path):
    undeclared = _query(tmp_path, "-- title: t\n-- description: d\nselect data_through from load_info\n")
    assert runner.run(headline, undeclared, {}).data.shape == (1, 1)  # no scope: runs
    with pytest.raises(runner.ScopeError):
        runner.run(headline, undeclared, {}, scope=("Northside",))
    site_free = _query(
        tmp_path,
        "-- title: t\n-- description: d\n-- site_free: true\nselect value from filter_options where filter = 'payer'\n",
        "free",
    )
    assert not runner.run(headline, site_free, {}, scope=("Northside",)).data.empty


@pytest.mark.parametrize(
    "body, message",
    [
        ("select count(*) as n from episodes", "does not take \\$filters"),
        ('select count(*) as n from "attendance"', "does not take \\$filters"),
        ("select * from residential_stepdowns", "does not take \\$filters"),
    ],
)
def test_catalog_refuses_episode_queries_without_sites(tmp_path, body, message):
    with pytest.raises(CatalogError, match=message):
        _query(tmp_path, f"-- title: t\n-- description: d\n{body}\n")


def test_catalog_refuses_site_free_queries_that_read_episodes(tmp_path):
    with pytest.raises(CatalogError, match="declares site_free but reads episode data"):
        _query(tmp_path, "-- title: t\n-- description: d\n-- site_free: true\nselect count(*) from enrollments\n")
    # names inside comments and strings are not reads
    _query(
        tmp_path,
        "-- title: t\n-- description: d\n-- site_free: true\n"
        "select 'episodes' as label /* episodes */ from load_info\n",
    )


# --- every page and export, for each kind of user ----------------------------------------------------------------


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OUTCOMES_AUDIT_LOG", str(path))
    return path


@pytest.fixture
def start(demo_db_path, tmp_path, monkeypatch, log):
    """start(user) -> AppTest after its first run: no login when user is None, else login on with that user."""
    import streamlit as st

    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES)

    def _start(user: dict | None) -> AppTest:
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        if user is not None:
            at.secrets = {"auth": AUTH, "roles_file": str(roles)}
            at.user = user
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _start


def shown(at: AppTest, downloads: dict) -> dict:
    """Everything a page puts in front of the user that carries data: charts, tables, metrics and downloads
    (on the explore page, its catalog tab: the ad-hoc tab differs by role by design). Tables are opened first."""
    open_tables(at)
    if at.tabs:
        at = at.tabs[0]
    files = []
    for button in at.download_button:
        data = downloads[button.proto.deferred_file_id]()
        files.append((button.label, data if isinstance(data, bytes) else str(data).encode()))
    return {
        "charts": [c.proto.spec for c in at.get("plotly_chart")],
        "tables": [df.value.to_csv() for df in [*at.table, *at.dataframe]],
        "metrics": [(m.label, m.value) for m in at.metric],
        "downloads": files,
    }


def _nothing_shown(at: AppTest) -> None:
    assert not at.get("plotly_chart") and not at.table and not at.dataframe and not at.metric and not at.download_button
    assert not at.multiselect and not at.date_input and not at.selectbox and not at.sidebar.caption


@pytest.mark.parametrize("page", VIEW_PAGES)
def test_director_sees_only_their_site(start, downloads, page):
    director = start(DIRECTOR)
    director.switch_page(page).run()
    assert not director.exception and not director.error, [e.value for e in director.exception or director.error]
    if "sites" in [w.key for w in director.multiselect]:
        assert director.multiselect(key="sites").options == [SITE]
    mine = shown(director, downloads)

    admin = start(ADMIN)
    admin.switch_page(page).run()
    admin.multiselect(key="sites").set_value([SITE]).run()
    assert mine == shown(admin, downloads)  # exactly what an admin sees with only the director's site selected
    if page != "pages/explore.py":  # the explore page shows the catalog until a query is chosen
        assert mine["tables"] and mine["downloads"]
        admin.multiselect(key="sites").set_value([]).run()
        assert shown(admin, downloads)["downloads"] != mine["downloads"]  # all sites differ: the check has teeth


@pytest.mark.parametrize("name", ["stepdown_rate", "engagement_by_week"])
def test_director_exports_and_explore_hold_only_their_site(start, downloads, demo_db, catalog, name):
    director = start(DIRECTOR)
    director.query_params["q"] = name
    director.query_params["sites"] = OTHERS  # a shared link naming other sites changes nothing
    director.switch_page("pages/explore.py").run()
    assert not director.exception
    csv = next(d for label, d in shown(director, downloads)["downloads"] if label == "Download CSV")
    result = runner.run(demo_db, catalog[name], {"sites": [SITE]})
    expected = result.data
    assert csv.decode() == files.export_csv(expected, result.reasons)
    everyone = runner.run(demo_db, catalog[name], {}).data
    assert not everyone.equals(expected)


@pytest.mark.parametrize("user", [ANALYST, ADMIN, None], ids=["analyst", "admin", "no-login"])
@pytest.mark.parametrize("page", VIEW_PAGES)
def test_all_site_roles_see_every_page(start, downloads, user, page):
    at = start(user)
    at.switch_page(page).run()
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]
    assert at.multiselect(key="sites").options == ["Eastgate", "Northside", "Riverside"]
    assert any(i.value.startswith("Local mode: no login configured") for i in at.info) == (user is None)
    shown(at, downloads)  # every export can be made


@pytest.mark.parametrize(
    "user, allowed",
    [(DIRECTOR, False), (ANALYST, False), (ADMIN, True), (None, True)],
    ids=["director", "analyst", "admin", "no-login"],
)
def test_data_page_is_for_admins_only(start, user, allowed, log):
    at = start(user)
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert bool(at.file_uploader) == allowed
    assert any("Not authorised" in e.value for e in at.error) != allowed
    if not allowed:
        denied = [e for e in audit.read(log) if e["event"] == "denied"]
        assert denied and denied[-1]["user"] == user["email"] and denied[-1]["action"] == "manage_data"


@pytest.mark.parametrize(
    "user, allowed",
    [(DIRECTOR, False), (ANALYST, True), (ADMIN, True), (None, True)],
    ids=["director", "analyst", "admin", "no-login"],
)
def test_adhoc_sql_is_for_analysts_and_admins(start, user, allowed):
    at = start(user)
    at.switch_page("pages/explore.py").run()
    assert not at.exception
    assert any(t.key == "adhoc_sql" for t in at.text_area) == allowed
    assert ("Ad-hoc SQL" in [t.label for t in at.tabs]) == allowed


def test_user_in_no_role_sees_not_authorised_and_nothing_else(start, log):
    at = start(STRANGER)
    assert [e.value for e in at.error] == [
        "Not authorised: someone@example.org has no role in this dashboard. "
        "Ask an administrator to add you to the roles file."
    ]
    _nothing_shown(at)
    assert [b.label for b in at.button] == ["Log out"]
    for page in PAGES:  # no page is reachable through the navigation...
        with pytest.raises(ValueError):
            at.switch_page(page)
    denied = [e for e in audit.read(log) if e["event"] == "denied"]
    assert len(denied) == 1 and denied[0]["user"] == "someone@example.org" and denied[0]["reason"] == "no role"


@pytest.mark.parametrize("page", PAGES)
def test_page_run_on_its_own_refuses_a_user_in_no_role(demo_db_path, tmp_path, monkeypatch, log, page):
    # ...nor by running the page script without app.py (Streamlit's legacy pages/ mode on a deep link)
    import streamlit as st

    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / page), default_timeout=60)
    at.secrets = {"auth": AUTH, "roles_file": str(roles)}
    at.user = STRANGER
    at.run()
    assert not at.exception
    assert any("Not authorised" in e.value for e in at.error)
    _nothing_shown(at)


def test_signed_out_visitor_is_asked_to_sign_in(start, log):
    at = start(SIGNED_OUT)
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.error
    _nothing_shown(at)
    assert audit.read(log) == []


def test_no_login_is_local_admin_mode_with_a_banner(start):
    at = start(None)
    assert at.info[0].value.startswith("Local mode: no login configured")
    assert "Log out" not in [b.label for b in at.button]


def test_signed_in_user_sees_who_they_are(start):
    at = start(DIRECTOR)
    assert any("director@example.org" in c.value and SITE in c.value for c in at.sidebar.caption)
    assert not any(i.value.startswith("Local mode") for i in at.info)


def test_broken_roles_file_fails_closed(start, tmp_path):
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    bad = tmp_path / "bad.toml"
    bad.write_text('[users."director@example.org"]\nrole = "king"\nsites = "*"\n')
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets = {"auth": AUTH, "roles_file": str(bad)}
    at.user = DIRECTOR
    at.run()
    assert any("misconfigured" in e.value for e in at.error)
    assert "king" not in " ".join(e.value for e in at.error)  # details go to the server log, not the viewer
    _nothing_shown(at)


# --- fail closed and identity (outcomes.privacy.deploy through the app) -------------------------------------------


@pytest.mark.parametrize(
    "auth, problem",
    [
        ({"client_id": "id"}, "[auth] has no redirect_uri"),
        (AUTH | {"cookie_secret": "x" * 32}, "cookie_secret is too short"),
        (AUTH | {"client_id": "replace-with-the-client-id"}, "client_id is still the example value"),
        ({}, "[auth] names no identity provider"),
    ],
    ids=["missing-keys", "short-secret", "example-value", "empty"],
)
def test_broken_auth_is_refused_never_local_mode(demo_db_path, monkeypatch, log, auth, problem):
    import streamlit as st

    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets = {"auth": auth}
    at.user = ADMIN
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["This server is not configured safely, so it shows nothing."]
    assert any(problem in m.value for m in at.markdown), [m.value for m in at.markdown]
    assert not any(i.value.startswith("Local mode") for i in at.info)
    _nothing_shown(at)
    assert not at.button and not at.file_uploader and not at.text_area
    assert audit.read(log) == []


def test_no_login_off_loopback_is_refused_in_the_app(demo_db_path, monkeypatch):
    import streamlit as st
    from streamlit import config

    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    st.cache_data.clear()
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    finally:
        config.set_option("server.address", before)
    assert [e.value for e in at.error] == ["This server is not configured safely, so it shows nothing."]
    assert any("server.address is '0.0.0.0' and no login is configured" in m.value for m in at.markdown)
    _nothing_shown(at)


def test_expired_token_signs_out_to_the_sign_in_page(start, log):
    import time

    at = start(DIRECTOR | {"exp": int(time.time()) - 5})
    assert [b.label for b in at.button] == ["Sign in"]
    assert [w.value for w in at.warning] == ["Signed out: your sign-in has expired. Sign in again."]
    _nothing_shown(at)
    [event] = audit.read(log)
    assert (event["event"], event["user"], event["outcome"]) == ("login", "director@example.org", "signed_out")
    fresh = start(DIRECTOR | {"exp": int(time.time()) + 600})  # the same user before expiry sees their page
    stale = ":material/schedule:"  # the fixture's data are old: only the stale-data warning may show
    assert "Sign in" not in [b.label for b in fresh.button] and all(w.icon == stale for w in fresh.warning)
    assert fresh.get("plotly_chart") or fresh.metric


def test_unverified_email_is_not_signed_in(start, log):
    at = start(DIRECTOR | {"email_verified": False})
    assert [b.label for b in at.button] == ["Sign in"]
    assert "not verified" in at.warning[0].value
    assert not at.error
    _nothing_shown(at)
    assert audit.read(log)[-1]["reason"] == "the identity provider says this e-mail address is not verified"


def test_roles_file_keyed_by_subject_id(start, tmp_path):
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES + f'\n[users."sub:00uXYZ"]\nrole = "director"\nsites = ["{SITE}"]\n')
    at = start({"is_logged_in": True, "sub": "00uXYZ", "email": "d2@example.org", "email_verified": False})
    assert any(f"· director · {SITE}" in c.value for c in at.sidebar.caption)
    assert at.multiselect(key="sites").options == [SITE]
