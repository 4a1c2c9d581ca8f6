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
from pathlib import Path

import pandas as pd
import pytest
from cli_tools import run as cli

from outcomes.catalog import checks, runner, scaffold
from outcomes.catalog.query import load_catalog, named_parameters, parse, split_header
from outcomes.paths import QUERY_DIR
from outcomes.privacy.suppress import HIGH, LOW

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(QUERY_DIR.glob("*.sql"))
IDS = [p.stem for p in FILES]
ENDING = re.compile(r"select \* from final\s*(\border by\b[^;]*)?;?\s*$", re.IGNORECASE)


@pytest.fixture(scope="module")
def headline(build_db):
    return build_db("headline", checks.GOLDEN_AS_OF)


def lint(*paths: Path) -> list[str]:
    """sqlfluff violations of `paths` under the repository's .sqlfluff, one line each naming the file."""
    from sqlfluff.core import FluffConfig, Linter

    linter = Linter(config=FluffConfig.from_path(str(ROOT)))
    problems = []
    for path in paths:
        linted = linter.lint_string(path.read_text(), fname=str(path))
        problems += [
            f"{path.name}:{v.line_no}:{v.line_pos} {v.rule_code()} {v.desc()}" for v in linted.get_violations()
        ]
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


def finished(name: str, text: str | None = None) -> str:
    """The scaffold as an analyst leaves it: the example kept, every TODO written out."""
    return re.sub(r"TODO ?", "", text or scaffold.template(name))


@pytest.fixture
def project(tmp_path):
    """add(name, text) puts a query into a fresh project's queries/ with its reference page; returns queries/."""
    queries, docs = tmp_path / "queries", tmp_path / "docs" / "measures"
    queries.mkdir()
    docs.mkdir(parents=True)
    (docs / "README.md").write_text("# Measures\n")

    def add(name: str, text: str | None = None) -> Path:
        (queries / f"{name}.sql").write_text(text if text is not None else finished(name))
        (docs / f"{name}.md").write_text(f"# {name}\n\nNumerator and denominator as in the header.\n")
        with open(docs / "README.md", "a") as index:
            index.write(f"- [{name}]({name}.md)\n")
        return queries

    return add


def test_scaffold_runs_and_check_says_what_is_left(scaffolded, demo_db, headline):
    """An untouched scaffold runs, draws and suppresses; `check` fails it for what a draft lacks, nothing else."""
    directory = scaffolded.parent
    for con in (demo_db, headline):
        problems = checks.check_all(con, directory)
        assert len(problems) == 2, problems
        assert "the header still has TODO" in problems[0] and "no reference page" in problems[1]
    query = load_catalog(directory)["discharges_by_month"]
    assert not shown_small_counts(query, runner.run(headline, query).data)
    assert not shown_small_counts(query, runner.run(demo_db, query).data)
    assert not runner.run(demo_db, query, raw=True).data.empty


def test_a_finished_scaffold_passes_check(project, demo_db, headline):
    directory = project("discharges_by_month")
    assert checks.check_all(demo_db, directory) == []
    assert checks.check_all(headline, directory) == []


def test_scaffold_style(scaffolded):
    assert not lint(scaffolded)
    assert ENDING.search(split_header(scaffolded.read_text())[1])


def test_scaffold_shows_every_header_key_and_param_type(scaffolded):
    header, _ = split_header(scaffolded.read_text())
    from outcomes.catalog.params import PARAM_TYPES
    from outcomes.catalog.query import HEADER_KEYS

    keys = {k for k in HEADER_KEYS if re.search(rf"^(# )?{k}:", header, re.M)}
    # keys another feature owns and the example does not need
    assert keys >= HEADER_KEYS - {"site_free", "model"}, sorted(HEADER_KEYS - keys)
    query = parse(scaffolded)
    assert {p.type for p in query.params.values() if not p.filter} >= set(PARAM_TYPES)
    assert query.takes("sites") and query.sidebar[0] == "start"


def test_scaffold_parameters_work(scaffolded, demo_db):
    query = load_catalog(scaffolded.parent)["discharges_by_month"]
    given = {
        "levels": "iop,residential",
        "include_transfers": "false",
        "payer_contains": "medic",
        "reason": "left_against_advice",
        "min_days": "3",
        "max_years": "0.5",
        "start": "2024-06-01",
        "end": "2025-06-30",
        "sites": "Northside",
    }
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


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            ("--   as_of:", "--   unused_param: {type: int, default: 1}\n--   as_of:"),
            "declares unused_param but the SQL does not use it",
        ),
        (
            ("where\n        discharge_date <= $as_of", "where\n        discharge_date <= $as_of + $undeclared_days"),
            "uses $undeclared_days but the header does not declare it",
        ),
        (
            (
                "chart: {kind: rate_lines, x: month, y: reason_rate",
                "chart: {kind: rate_lines, x: month, y: no_such_column",
            ),
            "chart column 'no_such_column' is not in the result",
        ),
        (
            ("chart: {kind: rate_lines, x: month,", "chart: {kind: lines, x: month,"),
            "chart: kind 'lines' is not one of p_chart",
        ),
        (
            ("chart: {kind: rate_lines, x: month,", "chart: {kind: rate_lines, x: month, colour: site,"),
            "chart: rate_lines takes no argument 'colour'",
        ),
        (
            ("    median_stay_days: discharges\n", "    median_stay_days: discharges\n--   keys: [no_such_key]\n"),
            "suppress names 'no_such_key', which is not in the result",
        ),
    ],
    ids=["declared-not-used", "used-not-declared", "chart-column", "chart-kind", "chart-argument", "suppress-column"],
)
def test_check_names_the_file_and_the_problem(project, demo_db_path, change, problem):
    project("good_query")
    directory = project("bad_query", finished("bad_query", _header_with(scaffold.template("bad_query"), *change)))
    assert cli("check", "--queries", str(directory), "--db", str(demo_db_path), "--update-golden").returncode != 0
    result = cli("check", "--queries", str(directory), "--db", str(demo_db_path))
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert any(line.startswith("bad_query.sql: ") and problem in line for line in lines), result.stderr
    assert "good_query.sql" not in result.stderr


def test_check_passes_a_good_folder_once_its_golden_output_is_written(project, demo_db_path):
    directory = project("good_query")
    first = cli("check", "--queries", str(directory), "--db", str(demo_db_path))
    assert first.returncode == 1 and "good_query.sql: no golden output" in first.stderr
    assert cli("check", "--queries", str(directory), "--db", str(demo_db_path), "--update-golden").returncode == 0
    assert (directory.parent / "tests" / "golden" / "good_query.csv").exists()
    result = cli("check", "--queries", str(directory), "--db", str(demo_db_path))
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


def test_update_golden_writes_every_file_and_check_then_passes(headline, tmp_path):
    directory = tmp_path / "queries"
    shutil.copytree(QUERY_DIR, directory, ignore=shutil.ignore_patterns("_build"))
    golden = tmp_path / "tests" / "golden"
    problems, _ = checks.check_goldens(headline, directory)
    assert len(problems) == len(FILES) and all("no golden output" in p for p in problems)
    problems, written = checks.check_goldens(headline, directory, update=True)
    assert problems == [] and sorted(written) == sorted(golden / f"{p.stem}.csv" for p in FILES)
    assert (golden / "stepdown_rate.csv").read_text() == (checks.GOLDEN_DIR / "stepdown_rate.csv").read_text()
    assert checks.check_goldens(headline, directory)[0] == []
    (golden / "stepdown_rate.csv").write_text("changed\n")
    problems, _ = checks.check_goldens(headline, directory)
    assert len(problems) == 1 and problems[0].startswith("stepdown_rate.sql: output differs from ")
