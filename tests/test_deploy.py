"""Fail closed (outcomes.privacy.deploy): address and login, the [auth] section, identity claims, file modes."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import stat
import tomllib
from pathlib import Path

import pytest

from outcomes.ingest import uploads
from outcomes.ingest.loader import load
from outcomes.privacy import access, deploy

ROOT = Path(__file__).resolve().parents[1]
GOOD_SECRET = "9f2c4e7a1b8d3f6e0a5c9b2d7e4f1a8c3b6d0e9f2a5c8b1d4e7f0a3c6b9d2e5f"
AUTH = {
    "redirect_uri": "https://outcomes.provider.net/oauth2callback",
    "cookie_secret": GOOD_SECRET,
    "client_id": "0oa1b2c3d4",
    "client_secret": "kq8ZpL2vN5xR7tW1yB4cF6hJ9mQ3sD0g",
    "server_metadata_url": "https://login.provider.net/.well-known/openid-configuration",
}


# --- address and mode -------------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_local_mode_on_loopback(address):
    assert deploy.is_loopback(address)
    assert deploy.decide(address, None).mode == "local"


@pytest.mark.parametrize(
    "address",
    [None, "", "0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "outcomes.lan", "localhost.example.org", "127.0.0.1.nip.io"],
)
def test_no_login_off_loopback_is_refused(address):
    decision = deploy.decide(address, None)
    assert decision.mode == "refused" and not decision.serving
    assert "server.address" in decision.message and "127.0.0.1" in decision.message and "[auth]" in decision.message
    assert "\n" not in decision.message


def test_default_config_listens_on_loopback():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert deploy.decide(config["server"]["address"], None).mode == "local"


def test_valid_auth_serves_login_on_any_address():
    for address in ("0.0.0.0", "127.0.0.1", None):
        assert deploy.decide(address, AUTH).mode == "login"
    named = {
        "redirect_uri": AUTH["redirect_uri"],
        "cookie_secret": GOOD_SECRET,
        "microsoft": {k: AUTH[k] for k in deploy.PROVIDER_KEYS},
        "okta": {k: AUTH[k] for k in deploy.PROVIDER_KEYS},
    }
    assert deploy.check_auth(named) == []


# --- a broken [auth] is refused, never served as local mode -----------------------------------------------


def _broken(**change) -> list[str]:
    auth = dict(AUTH)
    for k, v in change.items():
        if v is None:
            auth.pop(k)
        else:
            auth[k] = v
    decision = deploy.decide("127.0.0.1", auth)  # even on loopback: present but broken is not local mode
    assert decision.mode == "refused"
    return list(decision.problems)


@pytest.mark.parametrize("key", ["redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url"])
def test_missing_key(key):
    assert any(key in p for p in _broken(**{key: None}))


def test_empty_or_wrong_auth_section():
    assert deploy.decide("127.0.0.1", {}).mode == "refused"
    assert deploy.decide("127.0.0.1", "yes").mode == "refused"
    only_shared = {"redirect_uri": AUTH["redirect_uri"], "cookie_secret": GOOD_SECRET}
    assert any("names no identity provider" in p for p in deploy.check_auth(only_shared))
    half = dict(only_shared, google={"client_id": "x1"})
    problems = deploy.check_auth(half)
    assert "[auth.google] has no client_secret" in problems and "[auth.google] has no server_metadata_url" in problems


def test_the_example_secrets_file_is_refused():
    example = tomllib.loads((ROOT / ".streamlit" / "secrets.example.toml").read_text())
    problems = deploy.check_auth(example["auth"])
    assert len(problems) >= 4 and any("cookie_secret" in p for p in problems)
    assert any("example value" in p and "client_id" in p for p in problems)


@pytest.mark.parametrize(
    "value, word",
    [
        ("replace-with-the-client-id", "replace-with"),
        ("changeme", "changeme"),
        ("your-client-id", "your-"),
        ("<client id>", "<"),
    ],
)
def test_placeholder_values(value, word):
    assert any(f"client_id is still the example value (contains {word!r})" in p for p in _broken(client_id=value))


@pytest.mark.parametrize(
    "secret, why",
    [
        ("x" * 32, "too short"),
        ("x" * 64, "not random"),
        ("0123456789abcdef" * 4, "not random"),
        ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "not random"),
        ("ab12" * 20, "not random"),
        ("replace-with-a-long-random-string", "too short"),
        (
            "5f0c2e91a7b34d6e8c1f09a2b7d4e63c",
            "too short",
        ),  # 16 random bytes, written out so every run collects it alike
        ("correct horse battery staple", "too short"),
    ],
)
def test_weak_cookie_secret(secret, why):
    assert any("cookie_secret" in p and why in p for p in _broken(cookie_secret=secret)), _broken(cookie_secret=secret)


def test_generated_secrets_pass():
    # a token_urlsafe(32) that once held "xxx" by chance: a random secret is not an example value
    assert deploy.secret_problem("OkQ2DKVM2n3HHnnE8sF1dxn3CE-xxx5hJbPwCOE-UQA") is None
    for _ in range(50):
        assert deploy.secret_problem(secrets.token_hex(32)) is None
        assert deploy.secret_problem(secrets.token_urlsafe(32)) is None


def test_urls_must_be_https():
    assert any("https" in p for p in _broken(redirect_uri="http://outcomes.provider.net/oauth2callback"))
    assert any("oauth2callback" in p for p in _broken(redirect_uri="https://outcomes.provider.net/"))
    assert any("server_metadata_url" in p for p in _broken(server_metadata_url="login.provider.net"))
    assert deploy.check_auth(dict(AUTH, redirect_uri="http://localhost:8501/oauth2callback")) == []


# --- identity ---------------------------------------------------------------------------------------------

GRANTS = access.parse_roles(
    '[users."d@example.org"]\nrole = "director"\nsites = ["Northside"]\n'
    '[users."sub:00uABC"]\nrole = "analyst"\nsites = "*"\n'
    '[users."sub:pinned"]\nrole = "admin"\nsites = "*"\nissuer = "https://idp.one"\n'
)


@pytest.mark.parametrize("flag", [False, "False", "false ", "no", "", None, 0, "0", "null", [], "yes"])
def test_email_must_be_verified_when_sent(flag):
    user = access.resolve({"is_logged_in": True, "email": "d@example.org", "email_verified": flag}, GRANTS)
    assert not user.authorised


@pytest.mark.parametrize("flag", [True, "true", "True", 1, "1"])
def test_verified_email(flag):
    user = access.resolve({"is_logged_in": True, "email": "d@example.org", "email_verified": flag}, GRANTS)
    assert user.role == "director"


def test_expired_token_is_signed_out():
    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC).timestamp()
    claims = {"is_logged_in": True, "email": "d@example.org", "email_verified": True}
    assert not deploy.expired(claims | {"exp": now + 60}, now)
    assert deploy.expired(claims | {"exp": now - 1}, now) and deploy.expired(claims | {"exp": now}, now)
    assert deploy.expired(claims | {"exp": "soon"}, now) and deploy.expired(claims | {"exp": float("nan")}, now)
    assert deploy.expired(claims | {"exp": str(int(now - 5))}, now)
    assert not deploy.expired(claims, now)  # no exp: Streamlit's cookie decides
    assert access.resolve(claims | {"exp": now - 1}, GRANTS, now) == access.ANONYMOUS
    assert access.resolve(claims | {"exp": now + 60}, GRANTS, now).role == "director"


def test_roles_by_subject_id():
    by_sub = access.resolve({"is_logged_in": True, "sub": "00uABC"}, GRANTS)
    assert by_sub.role == "analyst" and by_sub.label == "sub:00uABC"
    assert not access.resolve({"is_logged_in": True, "sub": "00uabc"}, GRANTS).authorised  # exact match only
    # an unverified e-mail does not matter when the subject id is granted
    assert (
        access.resolve(
            {"is_logged_in": True, "sub": "00uABC", "email": "x@y.org", "email_verified": False}, GRANTS
        ).role
        == "analyst"
    )
    assert access.resolve({"is_logged_in": True, "sub": "pinned", "iss": "https://idp.one"}, GRANTS).role == "admin"
    assert not access.resolve({"is_logged_in": True, "sub": "pinned", "iss": "https://idp.two"}, GRANTS).authorised


@pytest.mark.parametrize(
    "text, message",
    [
        ('[users."sub:"]\nrole = "admin"\nsites = "*"', "subject id"),
        ('[users."nobody"]\nrole = "admin"\nsites = "*"', "e-mail address or sub:"),
        ('[users."a@b.org"]\nrole = "admin"\nsites = "*"\nissuer = "x"', "takes role and sites only"),
        ('[users."sub:1"]\nrole = "admin"\nsites = "*"\nissuer = ""', "issuer"),
    ],
)
def test_bad_subject_entries(text, message):
    with pytest.raises(access.RolesError, match=message):
        access.parse_roles(text)


# --- file modes -------------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_built_database_is_private(tmp_path):
    target = tmp_path / "new" / "data" / "outcomes.duckdb"
    load(ROOT / "tests" / "fixtures" / "headline", target)
    assert _mode(target) == 0o600
    assert _mode(target.parent) == 0o700 and _mode(target.parent.parent) == 0o700


def test_uploads_are_saved_private(tmp_path):
    folder = tmp_path / "up"
    with open(ROOT / "tests" / "fixtures" / "headline" / "clients.csv", "rb") as f:
        uploads.save([("Clients.CSV", f)], folder)
    assert _mode(folder) == 0o700 and _mode(folder / "clients.csv") == 0o600


def test_private_dir_leaves_existing_folders(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    deploy.private_dir(shared / "a" / "b")
    assert _mode(shared) == 0o755 and _mode(shared / "a") == 0o700 and _mode(shared / "a" / "b") == 0o700
    shutil.rmtree(shared)
