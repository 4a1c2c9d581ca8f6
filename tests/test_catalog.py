"""Checks every catalog query must pass. Parametrised over queries/*.sql: a new file is tested with no new code.

For each file: the header parses, the declared parameters are exactly the `$names` used, it runs with its
defaults on the demo data and on the headline fixture, its chart columns exist, every numeric column has a
suppression role, the suppressed output shows no count from 1 to 10, it matches tests/golden/NAME.csv where
that exists, it ends with `select * from final`, and it passes sqlfluff with the repository's .sqlfluff.
The scaffold from `python -m outcomes new` passes the same checks as written.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from outcomes import checks, runner, scaffold
from outcomes.catalog import QUERY_DIR, load_catalog, named_parameters, parse, split_header
from outcomes.suppress import HIGH, LOW

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(QUERY_DIR.glob("*.sql"))
IDS = [p.stem for p in FILES]
ENDING = re.compile(r"select \* from final\s*(\border by\b[^;]*)?;?\s*$", re.IGNORECASE)


@pytest.fixture(scope="module")
def headline(build_db):
    return build_db("headline", checks.GOLDEN_AS_OF)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "outcomes", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def lint(*paths: Path) -> list[str]:
    """sqlfluff violations of `paths` under the repository's .sqlfluff, one line each naming the file."""
    from sqlfluff.core import FluffConfig, Linter

    linter = Linter(config=FluffConfig.from_path(str(ROOT)))
    problems = []
    for path in paths:
        linted = linter.lint_string(path.read_text(), fname=str(path))
        problems += [f"{path.name}:{v.line_no}:{v.line_pos} {v.rule_code()} {v.desc()}"
                     for v in linted.get_violations()]
    return problems


def shown_small_counts(query, df: pd.DataFrame) -> list[str]:
    problems = []
    for col in query.suppress.get("counts", []):
        if col in df:
            v = pd.to_numeric(df[col], errors="coerce")
            small = df[(v >= LOW) & (v <= HIGH)]
            problems += [f"{query.name}: {col} shows {v[i]:g} in row {i}" for i in small.index]
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Every file in queries/
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_header_is_valid(path):
    header, sql = split_header(path.read_text())
    assert header.strip(), f"{path.name}: no header"
    query = parse(path)  # raises CatalogError naming the file and the problem
    assert query.title and query.description


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_declared_params_are_the_ones_used(path):
    query = parse(path)
    assert sorted(query.params) == sorted(named_parameters(query.sql))


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_header_is_filled_in(path):
    query = parse(path)
    text = " ".join([query.title, query.description, query.definition])
    assert "TODO" not in text, f"{path.name}: fill in the TODOs of the header"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_ends_with_select_from_final(path):
    _, sql = split_header(path.read_text())
    code = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    assert ENDING.search(code), f"{path.name}: end with `select * from final` (optionally `order by ...`)"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_sql_style(path):
    problems = lint(path)
    assert not problems, "sqlfluff (fix with `sqlfluff fix FILE`, then check the diff):\n" + "\n".join(problems)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_runs_on_demo_data(demo_db, path):
    query = parse(path)
    result = runner.run(demo_db, query, raw=True)
    assert not checks.check_result(query, result.data)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_runs_on_headline_fixture(headline, path):
    query = parse(path)
    result = runner.run(headline, query, raw=True)
    assert not checks.check_result(query, result.data)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_output_is_suppressed(demo_db, headline, path):
    query = parse(path)
    for con in (demo_db, headline):
        result = runner.run(con, query)
        assert not result.raw
        assert not shown_small_counts(query, result.data)


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_golden(headline, path):
    query = parse(path)
    if not (checks.GOLDEN_DIR / f"{query.name}.csv").exists():
        pytest.skip("no golden file")
    df = runner.run(headline, query, raw=True).data
    assert not checks.check_golden(query, df), "if the change is intended: python -m outcomes check --update-golden"


def test_golden_files_name_queries():
    names = {p.stem for p in FILES}
    orphans = [p.name for p in checks.GOLDEN_DIR.glob("*.csv") if p.stem not in names]
    assert not orphans, f"golden files without a query: {orphans}"


def test_check_all_passes_on_demo_data(demo_db):
    assert checks.check_all(demo_db) == []


# ---------------------------------------------------------------------------------------------------------------
# The scaffold passes the same checks as written
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def scaffolded(tmp_path) -> Path:
    return scaffold.new("discharges_by_month", tmp_path)


def test_scaffold_passes_checks(scaffolded, demo_db, headline):
    directory = scaffolded.parent
    assert checks.check_all(demo_db, directory) == []
    assert checks.check_all(headline, directory) == []
    query = load_catalog(directory)["discharges_by_month"]
    assert not shown_small_counts(query, runner.run(headline, query).data)
    assert not shown_small_counts(query, runner.run(demo_db, query).data)
    assert not runner.run(demo_db, query, raw=True).data.empty


def test_scaffold_style(scaffolded):
    assert not lint(scaffolded)
    assert ENDING.search(split_header(scaffolded.read_text())[1])


def test_scaffold_shows_every_header_key_and_param_type(scaffolded):
    header, _ = split_header(scaffolded.read_text())
    from outcomes.catalog import HEADER_KEYS
    from outcomes.params import PARAM_TYPES

    keys = {k for k in HEADER_KEYS if re.search(rf"^{k}:", header, re.M)}
    # keys another feature owns and the example does not need
    assert keys >= HEADER_KEYS - {"site_free", "model"}, sorted(HEADER_KEYS - keys)
    query = parse(scaffolded)
    assert {p.type for p in query.params.values()} >= set(PARAM_TYPES)
    assert query.params["sites"].filter


def test_scaffold_parameters_work(scaffolded, demo_db):
    query = load_catalog(scaffolded.parent)["discharges_by_month"]
    given = {"levels": "iop,residential", "include_transfers": "false", "payer_contains": "medic",
             "reason": "left_against_advice", "min_days": "3", "max_years": "0.5", "start": "2024-06-01",
             "end": "2025-06-30", "sites": "Northside"}
    df = runner.run(demo_db, query, given, raw=True).data
    assert not df.empty and not checks.check_result(query, df)
    assert df["discharges"].sum() < runner.run(demo_db, query, raw=True).data["discharges"].sum()


def test_new_refuses_existing_and_bad_names(tmp_path):
    assert cli("new", "my_query", "--queries", str(tmp_path)).returncode == 0
    assert (tmp_path / "my_query.sql").exists()
    again = cli("new", "my_query", "--queries", str(tmp_path))
    assert again.returncode != 0 and "already exists" in again.stderr and len(again.stderr.splitlines()) == 1
    for bad in ("MyQuery", "my-query", "1query", "my query", "_build", "my__query", "query_", "../x"):
        result = cli("new", bad, "--queries", str(tmp_path))
        assert result.returncode != 0, bad
        assert "lower_snake_case" in result.stderr and len(result.stderr.splitlines()) == 1, bad
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_query.sql"]


# ---------------------------------------------------------------------------------------------------------------
# The command line finds problems in a queries folder, and new files in it
# ---------------------------------------------------------------------------------------------------------------


def _header_with(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize("change, problem", [
    (("--   sites: filter", "--   sites: filter\n--   unused_param: {type: int, default: 1}"),
     "declares unused_param but the SQL does not use it"),
    (("where\n        discharge_date <= $as_of", "where\n        discharge_date <= $as_of + $undeclared_days"),
     "uses $undeclared_days but the header does not declare it"),
    (("chart: {kind: bar, x: month, y: reason_rate", "chart: {kind: bar, x: month, y: no_such_column"),
     "chart y column 'no_such_column' is not in the result"),
    (("    median_stay_days: discharges\n", "    median_stay_days: discharges\n--   keys: [no_such_key]\n"),
     "suppress names 'no_such_key', which is not in the result"),
], ids=["declared-not-used", "used-not-declared", "chart-column", "suppress-column"])
def test_check_names_the_file_and_the_problem(tmp_path, demo_db_path, change, problem):
    good = scaffold.template("good_query")
    (tmp_path / "good_query.sql").write_text(good)
    (tmp_path / "bad_query.sql").write_text(_header_with(scaffold.template("bad_query"), *change))
    result = cli("check", "--queries", str(tmp_path), "--db", str(demo_db_path))
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert any(line.startswith("bad_query.sql: ") and problem in line for line in lines), result.stderr
    assert "good_query.sql" not in result.stderr


def test_check_passes_a_good_folder(tmp_path, demo_db_path):
    (tmp_path / "good_query.sql").write_text(scaffold.template("good_query"))
    result = cli("check", "--queries", str(tmp_path), "--db", str(demo_db_path))
    assert result.returncode == 0, result.stderr
    assert "1 queries OK" in result.stdout


def test_a_new_file_appears_in_list(tmp_path):
    shutil.copy(QUERY_DIR / "stepdown_rate.sql", tmp_path / "stepdown_rate.sql")
    before = cli("list", "--queries", str(tmp_path))
    assert before.returncode == 0 and "discharges_by_month" not in before.stdout
    (tmp_path / "discharges_by_month.sql").write_text(scaffold.template("discharges_by_month"))
    after = cli("list", "--queries", str(tmp_path))
    assert after.returncode == 0
    names = [line.split("\t")[0] for line in after.stdout.splitlines()]
    assert names == ["discharges_by_month", "stepdown_rate"]
    assert "max_years:float" in after.stdout and "reason:choice" in after.stdout


def test_update_golden_rewrites_existing_files_only(headline, tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "GOLDEN_DIR", tmp_path)
    (tmp_path / "stepdown_rate.csv").write_text("stale\n")
    problems, written = checks.check_goldens(headline, update=True)
    assert problems == [] and written == [tmp_path / "stepdown_rate.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stepdown_rate.csv"]
    assert (tmp_path / "stepdown_rate.csv").read_text() == (QUERY_DIR.parent / "tests/golden/stepdown_rate.csv").read_text()
    assert checks.check_goldens(headline)[0] == []
    (tmp_path / "stepdown_rate.csv").write_text("changed\n")
    problems, _ = checks.check_goldens(headline)
    assert len(problems) == 1 and problems[0].startswith("stepdown_rate.sql: output differs from ")
