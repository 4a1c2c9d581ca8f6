"""CLI errors: one clear line on stderr and a non-zero exit, through a real subprocess."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "outcomes", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def headline_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("cli") / "h.duckdb"
    assert cli("load", "tests/fixtures/headline", "--db", db, "--as-of", "2025-06-30", "--quiet").returncode == 0
    return db


@pytest.mark.parametrize(
    "args, words",
    [
        (["query", "no_such_query"], "unknown query"),
        (["query", "stepdown_rate", "--param", "nope=1"], "no parameter nope"),
        (["query", "stepdown_rate", "--param", "window_days=abc"], "window_days"),
        (["query", "stepdown_rate", "--param", "as_of=2025-13-01"], "as_of"),
        (["query", "stepdown_rate", "--param", "window_days"], "key=value"),
    ],
)
def test_query_errors_are_one_line(headline_db, args, words):
    result = cli(*args, "--db", headline_db)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert result.stdout == ""


def test_missing_database(tmp_path):
    result = cli("query", "stepdown_rate", "--db", tmp_path / "none.duckdb")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "no database" in result.stderr


def test_bad_sql_names_the_problem(tmp_path, headline_db):
    (tmp_path / "broken.sql").write_text(
        "-- title: Broken\n-- description: Selects from a missing table.\nselect * from no_such_table\n"
    )
    result = cli("query", "broken", "--db", headline_db, "--queries", tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "no_such_table" in result.stderr


def test_load_refusal_exits_non_zero(tmp_path):
    result = cli("load", tmp_path, "--db", tmp_path / "x.duckdb", "--quiet")
    assert result.returncode != 0 and "missing-file" in result.stderr
    assert not (tmp_path / "x.duckdb").exists()


def test_query_formats(headline_db):
    csv = cli("query", "stepdown_rate", "--db", headline_db, "--format", "csv")
    assert csv.returncode == 0 and csv.stdout.splitlines()[0].startswith("month,eligible_discharges")
    table = cli("query", "stepdown_rate", "--db", headline_db)
    assert "1–10" in table.stdout  # hidden small counts read "1–10" on screen
    assert "1–10: a count from 1 to 10" in table.stdout  # and the legend says so
    js = cli("query", "stepdown_rate", "--db", headline_db, "--format", "json", "--raw")
    assert '"eligible_discharges":3' in js.stdout.replace(" ", "")


def test_suppressed_csv_and_json_say_which_cells_are_hidden_and_why(demo_db_path):
    """Hidden cells are empty, and the last column lists them as column=small or column=complement."""
    import io
    import json

    import pandas as pd

    csv = cli("query", "discharge_outcomes", "--db", demo_db_path, "--format", "csv")
    df = pd.read_csv(io.StringIO(csv.stdout), keep_default_na=False)
    assert list(df.columns)[-1] == "hidden"
    reasons = {r.split("=")[1] for text in df["hidden"] for r in text.split(";") if r}
    assert reasons == {"small", "complement"}
    for _, row in df.iterrows():
        named = {r.split("=")[0] for r in row["hidden"].split(";") if r}
        empty = {c for c in df.columns[:-1] if row[c] == ""}
        assert named == empty, row["month"]
    js = json.loads(cli("query", "discharge_outcomes", "--db", demo_db_path, "--format", "json").stdout)
    assert [r["hidden"] for r in js] == df["hidden"].tolist()
    raw = cli("query", "discharge_outcomes", "--db", demo_db_path, "--format", "csv", "--raw")
    assert "hidden" not in raw.stdout.splitlines()[0]
