"""Checks every catalog query must pass: used by `python -m outcomes check` and by the test suite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from outcomes.catalog import runner
from outcomes.catalog.query import Query, check_catalog
from outcomes.paths import QUERY_DIR, ROOT
from outcomes.privacy.suppress import UnclassifiedColumn, roles

GOLDEN_DIR = ROOT / "tests" / "golden"


def check_result(query: Query, df: pd.DataFrame) -> list[str]:
    """Problems with a query's output: chart columns missing, suppression roles missing or wrong."""
    problems = []
    for key in ("x", "y", "color", "facet", "n", "z"):
        col = query.chart.get(key)
        cols = col if isinstance(col, list) else [col] if col else []
        problems += [f"{query.path.name}: chart {key} column {c!r} is not in the result ({', '.join(df.columns)})"
                     for c in cols if c not in df.columns]
    try:
        roles(df, query.suppress)
    except UnclassifiedColumn as exc:
        problems.append(f"{query.path.name}: {exc}")
    spec = query.suppress
    for col, pair in (spec.get("rates") or {}).items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(c in df.columns for c in pair)):
            problems.append(f"{query.path.name}: rate {col} needs [numerator, denominator] columns of the result")
    for col, n in (spec.get("stats") or {}).items():
        if any(c not in df.columns for c in (n if isinstance(n, list) else [n])):
            problems.append(f"{query.path.name}: stat {col} needs n columns of the result, not {n!r}")
    declared = set(spec.get("counts", [])) | set(spec.get("rates") or {}) | set(spec.get("stats") or {}) | set(spec.get("keys", []))
    declared |= set(spec.get("total_rows") or {})
    curve = spec.get("curve") or {}
    declared |= set(curve.get("by") or []) | {curve[k] for k in ("x", "estimate") if k in curve}
    problems += [f"{query.path.name}: suppress names {c!r}, which is not in the result" for c in sorted(declared - set(df.columns))]
    return problems


def check_golden(query: Query, df: pd.DataFrame, update: bool = False) -> list[str]:
    """Compare with tests/golden/NAME.csv when it exists (or rewrite it when `update`)."""
    from outcomes.present.files import to_csv

    path = GOLDEN_DIR / f"{query.name}.csv"
    text = to_csv(df)
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return []
    if path.exists() and path.read_text() != text:
        return [f"{query.path.name}: output differs from {path.relative_to(GOLDEN_DIR.parents[1])}"]
    return []


def check_all(con, directory: Path = QUERY_DIR, golden: bool = False, update_golden: bool = False) -> list[str]:
    """Every problem found in the catalog, one line each naming the file."""
    catalog, problems = check_catalog(directory)
    for query in catalog.values():
        try:
            result = runner.run(con, query, raw=True)
        except Exception as exc:  # any failure to run is a finding, named by file
            problems.append(f"{query.path.name}: does not run with its defaults: {str(exc).splitlines()[0]}")
            continue
        problems += check_result(query, result.data)
        if (golden or update_golden) and (GOLDEN_DIR / f"{query.name}.csv").exists():
            problems += check_golden(query, result.data, update_golden)  # `con` must be the headline fixture
    return problems


# Golden files hold each query's raw output, with its defaults, on the headline fixture (tests/fixtures/headline,
# loaded as of GOLDEN_AS_OF): a small data set whose every number is worked out by hand in its README.
GOLDEN_FIXTURE = GOLDEN_DIR.parent / "fixtures" / "headline"
GOLDEN_AS_OF = "2025-06-30"


def golden_db(tmp: Path) -> Path:
    """Build the headline fixture's database in `tmp` (a fresh folder) and return its path."""
    import datetime as dt

    from outcomes.ingest.loader import load

    path = Path(tmp) / "golden.duckdb"
    load(GOLDEN_FIXTURE, path, dt.date.fromisoformat(GOLDEN_AS_OF))
    return path


def check_goldens(con, directory: Path = QUERY_DIR, update: bool = False) -> tuple[list[str], list[Path]]:
    """(problems, files rewritten): every query with a tests/golden/NAME.csv, run raw with its defaults on `con`
    (the headline fixture), compared with that file, or the file rewritten when `update`. A query gets a golden
    file when one exists, even empty: `touch tests/golden/NAME.csv`, then `python -m outcomes check --update-golden`.
    """
    catalog, problems = check_catalog(directory)
    written = []
    for query in catalog.values():
        path = GOLDEN_DIR / f"{query.name}.csv"
        if not path.exists():
            continue
        try:
            df = runner.run(con, query, raw=True).data
        except Exception as exc:  # any failure to run is a finding, named by file
            problems.append(f"{query.path.name}: does not run on the golden fixture: {str(exc).splitlines()[0]}")
            continue
        problems += check_golden(query, df, update)
        if update:
            written.append(path)
    return problems, written
