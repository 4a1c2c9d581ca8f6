"""The query catalog: `queries/*.sql` files with a YAML header in `--` comments."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import filters
from .params import PARAM_TYPES, Param

ROOT = Path(__file__).resolve().parents[1]
QUERY_DIR = ROOT / "queries"
BUILD_DIR = QUERY_DIR / "_build"

CHART_KINDS = ("line", "bar", "area", "scatter", "heatmap", "funnel", "sankey", "step", "table")
HEADER_KEYS = {"title", "description", "params", "chart", "area", "suppress", "definition", "unstable_below",
               "site_free", "model"}
# What a query declaring `site_free: true` may read: nothing that holds episodes (see episode_sources).
SITE_FREE_SOURCES = {"filter_options", "load_info", "load_files"}


class CatalogError(Exception):
    """A query file is malformed; the message names the file."""


@dataclass(frozen=True)
class Query:
    name: str
    path: Path
    title: str
    description: str
    sql: str
    params: dict[str, Param]
    chart: dict = field(default_factory=dict)
    area: str = "other"
    suppress: dict = field(default_factory=dict)
    definition: str = ""
    unstable_below: int = 30
    site_free: bool = False  # reads no episode data, so it needs no `sites` parameter
    model: str = ""  # a post-step of outcomes/models.py that turns the SQL's rows into the result


def named_parameters(sql: str) -> list[str]:
    """Names of `$name` parameters in SQL, in order of first use, skipping comments, strings and quoted names."""
    names: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:  # block comments nest
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif ch in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote is an escaped quote
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif ch == "$":
            tag = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if tag:  # dollar-quoted string: $$...$$ or $tag$...$tag$
                end = sql.find(tag.group(0), i + len(tag.group(0)))
                i = n if end < 0 else end + len(tag.group(0))
                continue
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", sql[i:])
            if m:
                if m.group(1) not in names:
                    names.append(m.group(1))
                i += len(m.group(0))
            else:
                i += 1
        elif ch in "eE" and sql.startswith("'", i + 1):
            j = i + 2  # escape string E'...': a backslash or a doubled quote escapes
            while j < n and (sql[j] != "'" or sql.startswith("''", j)):
                j += 2 if sql[j] == "\\" or sql[j] == "'" else 1
            i = j + 1
        elif ch.isalnum() or ch == "_":
            # an identifier such as a$b is one word, not a parameter
            m = re.match(r"[\w$]+", sql[i:])
            i += len(m.group(0))
        else:
            i += 1
    return names


def split_header(text: str) -> tuple[str, str]:
    """Split a file into its leading `--` comment block (prefix removed) and the SQL after it."""
    lines = text.splitlines(keepends=True)
    header = []
    for k, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("--"):
            body = stripped[2:]
            header.append(body[1:] if body.startswith(" ") else body)
        elif stripped == "" and not header:
            continue
        else:
            return "\n".join(header), "".join(lines[k:])
    return "\n".join(header), ""


def _param(name: str, spec, path: Path) -> Param:
    if spec == "filter":
        if name not in filters.GLOBAL:
            raise CatalogError(f"{path.name}: parameter {name} is marked 'filter' but is not a global filter "
                               f"({', '.join(filters.GLOBAL)})")
        return filters.GLOBAL[name]
    if not isinstance(spec, dict) or spec.get("type") not in PARAM_TYPES:
        raise CatalogError(f"{path.name}: parameter {name} needs a type, one of {', '.join(PARAM_TYPES)}")
    unknown = set(spec) - {"type", "default", "label", "choices", "options"}
    if unknown:
        raise CatalogError(f"{path.name}: parameter {name} has unknown keys {sorted(unknown)}")
    if spec["type"] == "choice" and not spec.get("choices"):
        raise CatalogError(f"{path.name}: choice parameter {name} needs choices")
    p = Param(name, spec["type"], None, spec.get("label", name.replace("_", " ")), tuple(spec.get("choices") or ()),
              spec.get("options"))
    default = spec.get("default")
    if default is not None and not (p.type == "date" and default == "data_through"):
        try:
            default = p.coerce(default)
        except ValueError as exc:
            raise CatalogError(f"{path.name}: default of {exc}") from None
    return Param(p.name, p.type, default, p.label, p.choices, p.options)


def parse(path: Path) -> Query:
    """Read one query file and validate its header against its SQL."""
    header, sql = split_header(path.read_text())
    try:
        meta = yaml.safe_load(header) if header.strip() else None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path.name}: header is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(meta, dict):
        raise CatalogError(f"{path.name}: missing header (leading `--` comment lines of YAML with title and description)")
    unknown = set(meta) - HEADER_KEYS
    if unknown:
        raise CatalogError(f"{path.name}: unknown header keys {sorted(unknown)}")
    for key in ("title", "description"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise CatalogError(f"{path.name}: header needs a {key}")
    if not sql.strip():
        raise CatalogError(f"{path.name}: no SQL after the header")
    params = {name: _param(name, spec, path) for name, spec in (meta.get("params") or {}).items()}
    used = named_parameters(sql)
    undeclared = [n for n in used if n not in params]
    unused = [n for n in params if n not in used]
    if undeclared:
        raise CatalogError(f"{path.name}: SQL uses ${', $'.join(undeclared)} but the header does not declare it")
    if unused:
        raise CatalogError(f"{path.name}: header declares {', '.join(unused)} but the SQL does not use it")
    chart = meta.get("chart") or {}
    if chart and chart.get("kind") not in CHART_KINDS:
        raise CatalogError(f"{path.name}: chart kind must be one of {', '.join(CHART_KINDS)}")
    site_free = meta.get("site_free", False)
    if not isinstance(site_free, bool):
        raise CatalogError(f"{path.name}: site_free must be true or false")
    _check_site_scope(path, sql, params, site_free)
    model = _check_model(path, meta.get("model"), params)
    suppress = meta.get("suppress") or {}
    if set(suppress) - {"counts", "rates", "stats", "keys", "totals", "total_rows", "curve"}:
        raise CatalogError(f"{path.name}: suppress takes counts, rates, stats, keys, totals, total_rows and curve")
    _check_relations(path, suppress)
    _check_curve(path, suppress)
    return Query(path.stem, path, meta["title"].strip(), " ".join(meta["description"].split()), sql, params,
                 chart, meta.get("area", "other"), suppress, (meta.get("definition") or "").strip(),
                 int(meta.get("unstable_below", 30)), site_free, model)


def _check_model(path: Path, model, params: dict) -> str:
    """`model: NAME` names a registered post-step; the runner fits it over every site, so it needs `sites`."""
    from .models import REGISTRY

    if model is None:
        return ""
    if model not in REGISTRY:
        raise CatalogError(f"{path.name}: model must be one of {', '.join(sorted(REGISTRY))}")
    if "sites" not in params:
        raise CatalogError(f"{path.name}: a model query must take `sites: filter`")
    return model


@functools.cache
def episode_sources() -> frozenset[str]:
    """Tables and table macros holding episode-level data: the contract's tables and what queries/_build makes."""
    from .contract import TABLES

    names = set(TABLES)
    for path in BUILD_DIR.glob("*.sql"):
        text = path.read_text().lower()
        names |= set(re.findall(r"create\s+(?:or\s+replace\s+)?(?:temp\s+)?(?:table|view)\s+([a-z_][a-z0-9_]*)", text))
        names |= set(re.findall(r"create\s+(?:or\s+replace\s+)?macro\s+([a-z_][a-z0-9_]*)\s*\([^)]*\)\s*as\s+table", text))
    return frozenset(names - SITE_FREE_SOURCES)


def _words(sql: str) -> set[str]:
    """Lower-cased identifiers of `sql`, outside comments and string literals."""
    code = re.sub(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", " ", sql, flags=re.S)
    return {w.lower().strip('"') for w in re.findall(r'"[^"]+"|[A-Za-z_][A-Za-z0-9_]*', code)}


def _check_site_scope(path: Path, sql: str, params: dict, site_free: bool) -> None:
    """Every query that reads episode data takes the global `sites` filter, so a site scope can apply to it."""
    reads = sorted(_words(sql) & episode_sources())
    if site_free and "sites" in params:
        raise CatalogError(f"{path.name}: declares site_free but takes sites; drop one")
    if site_free and reads:
        raise CatalogError(f"{path.name}: declares site_free but reads episode data ({', '.join(reads)})")
    if reads and "sites" not in params:
        raise CatalogError(f"{path.name}: reads episode data ({', '.join(reads)}) but does not take `sites: filter`, "
                           "so a user's site scope could not apply to it")
    if "sites" in params and params["sites"].type != "list":
        raise CatalogError(f"{path.name}: sites must be the global filter (`sites: filter`)")


def _check_relations(path: Path, suppress: dict) -> None:
    """`totals: {total: [part, ...]}` sums declared counts (one part may be an unshown `~name`);
    `total_rows: {key: marker}` names a key column and the value marking its total row."""
    counts = set(suppress.get("counts") or [])
    totals = suppress.get("totals") or {}
    if not isinstance(totals, dict):
        raise CatalogError(f"{path.name}: suppress totals must map a total count to its list of parts")
    for total, parts in totals.items():
        if total not in counts or not isinstance(parts, list) or not parts:
            raise CatalogError(f"{path.name}: suppress totals {total}: needs a declared count and a list of parts")
        unshown = [p for p in parts if isinstance(p, str) and p.startswith("~")]
        wrong = [p for p in parts if p not in counts and p not in unshown]
        if wrong or len(unshown) > 1 or total in parts or len(set(parts)) < len(parts):
            raise CatalogError(f"{path.name}: suppress totals {total}: parts must be distinct declared counts, "
                               f"and at most one unshown ~part ({', '.join(map(str, wrong)) or 'check the list'})")
    rows = suppress.get("total_rows") or {}
    if not isinstance(rows, dict) or any(not isinstance(v, (str, int)) or isinstance(v, bool) for v in rows.values()):
        raise CatalogError(f"{path.name}: suppress total_rows must map a key column to the value of its total row")
    measures = counts | set(suppress.get("rates") or {}) | set(suppress.get("stats") or {})
    if set(rows) & measures:
        raise CatalogError(f"{path.name}: suppress total_rows must name a key column, not a count, rate or stat")


def _check_curve(path: Path, suppress: dict) -> None:
    """`curve: {by, x, at_risk, events, estimate[, total]}`: at_risk, events and total are declared counts."""
    curve = suppress.get("curve")
    if curve is None:
        return
    needed = {"by", "x", "at_risk", "events", "estimate"}
    if not isinstance(curve, dict) or needed - set(curve) or set(curve) - needed - {"total"}:
        raise CatalogError(f"{path.name}: suppress curve takes by, x, at_risk, events, estimate and optionally total")
    counts = set(suppress.get("counts") or [])
    if not isinstance(curve["by"], list) or {curve["at_risk"], curve["events"], curve.get("total", curve["events"])} - counts:
        raise CatalogError(f"{path.name}: suppress curve: by must be a list, and at_risk, events and total "
                           "declared counts")


def load_catalog(directory: Path = QUERY_DIR) -> dict[str, Query]:
    """Every query in `directory` (top level only), by name; raises CatalogError on the first bad file."""
    return {q.name: q for q in (parse(p) for p in sorted(directory.glob("*.sql")))}


def check_catalog(directory: Path = QUERY_DIR) -> tuple[dict[str, Query], list[str]]:
    """Parse every file, collecting one error line per bad file instead of stopping."""
    good, errors = {}, []
    for p in sorted(directory.glob("*.sql")):
        try:
            good[p.stem] = parse(p)
        except CatalogError as exc:
            errors.append(str(exc))
    return good, errors
