"""The documentation keeps up with the code: every command in the README, every header key and type documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from outcomes.catalog.params import PARAM_TYPES
from outcomes.catalog.query import HEADER_KEYS, PANEL_KEYS
from outcomes.cli import parser
from outcomes.present import charts

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "adding-a-query.md"


def _subcommands() -> list[str]:
    actions = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(actions[0].choices)


def _command_table() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


@pytest.mark.parametrize("command", _subcommands())
def test_every_command_is_in_the_readme_table(command):
    assert re.search(rf"^\| `python -m outcomes {command}\b", _command_table(), re.M), (
        f"README.md's command table has no row for `python -m outcomes {command}`"
    )


@pytest.mark.parametrize("key", sorted(HEADER_KEYS))
def test_every_header_key_is_documented(key):
    assert f"`{key}`" in GUIDE.read_text(), f"docs/adding-a-query.md does not explain the header key `{key}`"


@pytest.mark.parametrize("kind", PARAM_TYPES)
def test_every_parameter_type_is_documented(kind):
    assert re.search(rf"^\| `{kind}` \|", GUIDE.read_text(), re.M), (
        f"docs/adding-a-query.md's parameter table has no row for `{kind}`"
    )


@pytest.mark.parametrize("kind", charts.KINDS)
def test_every_chart_kind_is_documented_with_its_arguments(kind):
    row = re.search(rf"^\| `{kind}` \|.*$", GUIDE.read_text(), re.M)
    assert row, f"docs/adding-a-query.md's chart table has no row for `{kind}`"
    builder = charts.BUILDERS.get(kind)
    missing = [
        a for a in (builder.params if builder else ()) if a not in charts.IMPLIED and f"`{a}`" not in row.group(0)
    ]
    assert not missing, f"docs/adding-a-query.md's row for `{kind}` does not name {', '.join(missing)}"


@pytest.mark.parametrize("key", sorted(PANEL_KEYS))
def test_every_panel_key_is_documented(key):
    assert f"`{key}`" in GUIDE.read_text(), f"docs/adding-a-query.md does not explain the panel key `{key}`"


def test_guide_is_linked_from_the_readme():
    assert "(docs/adding-a-query.md)" in (ROOT / "README.md").read_text()


def test_guide_links_resolve():
    text = GUIDE.read_text()
    for target in re.findall(r"\]\((?!https?://)([^)#]+)", text):
        assert (GUIDE.parent / target).resolve().exists(), f"broken link {target} in docs/adding-a-query.md"


INTERNAL_SETTINGS = {"OUTCOMES_SANDBOX_CONFIG"}  # the server hands its workers their limits; nobody sets it


def _settings() -> list[str]:
    code = "\n".join(p.read_text() for p in (ROOT / "outcomes").rglob("*.py"))
    return sorted(set(re.findall(r"OUTCOMES_[A-Z_]*[A-Z]", code)) - INTERNAL_SETTINGS)


@pytest.mark.parametrize("name", _settings())
def test_every_environment_setting_is_documented(name):
    text = "\n".join(p.read_text() for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
    # a list of one family may name the rest by their ending: (`$OUTCOMES_SQL_MEMORY_LIMIT`, `_THREADS`)
    ending = name.split("_SQL_", 1)[1] if "_SQL_" in name else ""
    assert name in text or (ending and f"`_{ending}`" in text), f"{name} is read by the code but in no doc"
