"""Checks every catalog query must pass: used by `python -m outcomes check` and by the test suite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from outcomes.catalog import runner
from outcomes.catalog.query import Query, check_catalog
from outcomes.paths import QUERY_DIR, ROOT
from outcomes.privacy.suppress import UnclassifiedColumn, roles

GOLDEN_DIR = ROOT / "tests" / "golden"


def project(directory: Path) -> tuple[Path, Path]:
    """(golden folder, measures docs folder) of the project whose catalog is `directory` (its queries/)."""
    root = Path(directory).resolve().parent
    return (GOLDEN_DIR if root == ROOT else root / "tests" / "golden"), root / "docs" / "measures"


def chart_values(query: Query) -> dict:
    """What a header's placeholders are filled from when nothing is chosen: parameter defaults and panel vars."""
    return {n: p.default for n, p in query.params.items()} | (query.panel.get("vars") or {})


def check_header(query: Query) -> list[str]:
    """Problems a header shows before it runs: its chart against the builder it names, panel placeholders."""
    from outcomes.present import charts

    values = chart_values(query)
    problems = [f"{query.path.name}: {p}" for p in charts.problems(query.chart, set(values))]
    for key in ("title", "n"):
        missing = charts.placeholders(query.panel.get(key)) - set(values)
        if missing:
            problems.append(
                f"{query.path.name}: panel {key} uses {{{', '.join(sorted(missing))}}}, which is "
                "neither a parameter nor a panel var"
            )
    return problems


def check_result(query: Query, df: pd.DataFrame) -> list[str]:
    """Problems with a query's output: chart columns missing, suppression roles missing or wrong."""
    from outcomes.present import charts

    problems = []
    if not charts.problems(query.chart, set(chart_values(query))):
        spec = charts.spec(query.chart, chart_values(query))
        rows = query.panel.get("rows") or {}
        problems += [
            f"{query.path.name}: chart column {c!r} is not in the result ({', '.join(df.columns)})"
            for c in [*charts.columns(spec), *rows]
            if c not in df.columns
        ]
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
    declared = (
        set(spec.get("counts", []))
        | set(spec.get("rates") or {})
        | set(spec.get("stats") or {})
        | set(spec.get("keys", []))
    )
    declared |= set(spec.get("total_rows") or {})
    curve = spec.get("curve") or {}
    declared |= set(curve.get("by") or []) | {curve[k] for k in ("x", "estimate") if k in curve}
    problems += [
        f"{query.path.name}: suppress names {c!r}, which is not in the result"
        for c in sorted(declared - set(df.columns))
    ]
    return problems


def check_golden(query: Query, df: pd.DataFrame, update: bool = False) -> list[str]:
    """Compare with tests/golden/NAME.csv (or write it when `update`); a query without one is a problem."""
    from outcomes.present.files import to_csv

    path = project(query.path.parent)[0] / f"{query.name}.csv"
    # 10 decimals: a parallel sum may differ in the last bits from run to run, never in a number anyone reads
    text = to_csv(df.round({c: 10 for c in df.columns if pd.api.types.is_float_dtype(df[c])}))
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return []
    if not path.exists():
        return [
            f"{query.path.name}: no golden output {_shown(path)}: write it with "
            "`python -m outcomes check --update-golden` and check it against a hand count"
        ]
    if path.read_text() != text:
        return [f"{query.path.name}: output differs from {_shown(path)}"]
    return []


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def check_complete(query: Query) -> list[str]:
    """What a finished query has that a draft lacks: no TODO left in its header, a reference page listed in
    the measures index."""
    problems = []
    header = query.path.read_text().split("\n\n", 1)[0]
    if "TODO" in header:
        problems.append(f"{query.path.name}: the header still has TODO (fill in the title, description and definition)")
    docs = project(query.path.parent)[1]
    page = docs / f"{query.name}.md"
    if not page.exists():
        problems.append(
            f"{query.path.name}: no reference page docs/measures/{query.name}.md (what is counted, "
            "the numerator and denominator, the standard it follows)"
        )
    elif not (docs / "README.md").exists() or f"({query.name}.md)" not in (docs / "README.md").read_text():
        problems.append(f"{query.path.name}: docs/measures/{query.name}.md is not listed in docs/measures/README.md")
    return problems


def check_all(con, directory: Path = QUERY_DIR) -> list[str]:
    """Every problem found in the catalog, one line each naming the file: the header, a run with the defaults
    on `con`, the chart and suppression against the result, and what a finished query has (check_complete)."""
    catalog, problems = check_catalog(directory)
    for query in catalog.values():
        problems += check_header(query) + check_complete(query)
        try:
            result = runner.run(con, query, raw=True)
        except Exception as exc:  # any failure to run is a finding, named by file
            problems.append(f"{query.path.name}: does not run with its defaults: {str(exc).splitlines()[0]}")
            continue
        problems += check_result(query, result.data)
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
    """(problems, files written): every query run raw with its defaults on `con` (the headline fixture) and
    compared with its tests/golden/NAME.csv, or every file written when `update` (review it with git diff)."""
    catalog, problems = check_catalog(directory)
    written = []
    for query in catalog.values():
        try:
            df = runner.run(con, query, raw=True).data
        except Exception as exc:  # any failure to run is a finding, named by file
            problems.append(f"{query.path.name}: does not run on the golden fixture: {str(exc).splitlines()[0]}")
            continue
        problems += check_golden(query, df, update)
        if update:
            written.append(project(directory)[0] / f"{query.name}.csv")
    return problems, written
