"""Production settings in .streamlit/config.toml, and the example secrets and roles files."""

from __future__ import annotations

import tomllib
from pathlib import Path

from outcomes.ingest import uploads
from outcomes.privacy import access

ROOT = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


def test_production_settings():
    config = _config()
    assert config["client"]["showErrorDetails"] == "none"  # viewers get a generic message, no traceback
    assert config["client"]["toolbarMode"] == "viewer"
    assert config["client"]["disableDataExport"] is True  # exports go through the audited buttons
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["maxUploadSize"] == uploads.DEFAULT_LIMIT_MB
    assert config["browser"]["gatherUsageStats"] is False


def test_streamlit_accepts_every_setting():
    from streamlit import config as st_config

    options = st_config.get_config_options()
    for section, values in _config().items():
        for name in values:
            assert f"{section}.{name}" in options, f"{section}.{name} is not a Streamlit option"
    accepted = {o.value for o in st_config.ShowErrorDetailsConfigOptions}  # full, stacktrace, type, none
    assert _config()["client"]["showErrorDetails"] in accepted


def test_secrets_are_never_committed():
    import subprocess

    secret = [".streamlit/secrets.toml", "config/roles.toml", "data/audit.jsonl", "data/outcomes.duckdb", "data/demo/x"]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *secret, "data/README.md"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert ignored == secret, "git must ignore secrets, roles, the audit log and data, and keep data/README.md"
    example = tomllib.loads((ROOT / ".streamlit" / "secrets.example.toml").read_text())
    needed = {"redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url"}
    assert needed <= set(example["auth"])
    assert example["auth"]["cookie_secret"].startswith("replace")


def test_example_roles_file_is_valid():
    grants = access.load_roles(ROOT / "config" / "roles.example.toml")
    assert {g.role for g in grants.values()} == set(access.ROLES)
