"""The query catalog: `queries/*.sql` files with a YAML header in `--` comments."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from outcomes.catalog import filters
from outcomes.catalog.params import PARAM_TYPES, Param
from outcomes.catalog.sql_text import named_parameters, split_header, words
from outcomes.measures.stats import UNSTABLE_BELOW
from outcomes.paths import BUILD_DIR, QUERY_DIR

# The director pages a query can be drawn on (`page:`), in menu order; Explore groups queries by these too.
PAGES = ("overview", "stepdown", "engagement", "retention", "pathways")
AREAS = (*PAGES, "other")
HEADER_KEYS = {
    "title",
    "summary",
    "description",
    "params",
    "chart",
    "area",
    "suppress",
    "definition",
    "unstable_below",
    "site_free",
    "page",
    "order",
    "panel",
    "model",
}
PANEL_KEYS = {"title", "empty", "footnote", "recent_months", "recent_weeks", "n", "n_at", "rows", "vars"}
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
    params: dict[str, Param]  # declared in the header, and the magic ones its SQL uses (outcomes.catalog.filters)
    chart: dict = field(default_factory=dict)  # `kind` and the builder's arguments (outcomes.present.charts)
    area: str = "other"
    suppress: dict = field(default_factory=dict)
    definition: str = ""
    unstable_below: int = UNSTABLE_BELOW
    site_free: bool = False  # reads no episode data, so it needs no `sites` parameter
    page: str | None = None  # the director page it is drawn on, at `order` among that page's panels
    order: int = 0
    panel: dict = field(default_factory=dict)  # how the page shows it: title, empty message, notes, rows
    model: str = ""  # a post-step of outcomes/measures/models.py that turns the SQL's rows into the result
    summary: str = ""  # one plain sentence for the screen: what the chart shows, without parameter names

    @property
    def lead(self) -> str:
        """The summary, or else the first sentence of the description (not fooled by "day 0. to" or
        "(1. to 5.)")."""
        if self.summary:
            return self.summary
        return re.split(r"(?<=[a-z0-9)%])\.\s+(?=[A-Z])", self.description, maxsplit=1)[0].rstrip(".") + "."

    def takes(self, name: str) -> bool:
        """Whether a value for `name` reaches this query: a parameter, or a member of its `$filters`."""
        return name in self.params or ("filters" in self.params and name in filters.CLIENT)

    @property
    def sidebar(self) -> list[str]:
        """The global sidebar filters this query uses, in sidebar order."""
        return [name for name in filters.GLOBAL if self.takes(name)]


def _param(name: str, spec, path: Path) -> Param:
    if name in filters.MAGIC or name in filters.GLOBAL:
        raise CatalogError(
            f"{path.name}: parameter {name} is a global filter: use ${name if name in filters.MAGIC else 'filters'} "
            "in the SQL and leave it out of params"
        )
    if not isinstance(spec, dict) or spec.get("type") not in PARAM_TYPES:
        raise CatalogError(f"{path.name}: parameter {name} needs a type, one of {', '.join(PARAM_TYPES)}")
    unknown = set(spec) - {"type", "default", "label", "choices", "options"}
    if unknown:
        raise CatalogError(f"{path.name}: parameter {name} has unknown keys {sorted(unknown)}")
    if spec["type"] == "choice" and not spec.get("choices"):
        raise CatalogError(f"{path.name}: choice parameter {name} needs choices")
    p = Param(
        name,
        spec["type"],
        None,
        spec.get("label", name.replace("_", " ")),
        tuple(spec.get("choices") or ()),
        spec.get("options"),
    )
    default = spec.get("default")
    if default is not None and not (p.type == "date" and default == "data_through"):
        try:
            default = p.coerce(default)
        except ValueError as exc:
            raise CatalogError(f"{path.name}: default of {exc}") from None
    return Param(p.name, p.type, default, p.label, p.choices, p.options)


def _params(path: Path, declared: dict, sql: str) -> dict[str, Param]:
    """The header's params, then the magic ones the SQL uses, in order of first use; each used exactly."""
    params = {name: _param(name, spec, path) for name, spec in declared.items()}
    used = named_parameters(sql)
    for name in used:
        if name not in params and name in filters.MAGIC:
            params[name] = filters.MAGIC[name]
        elif name not in params and name in filters.GLOBAL:
            raise CatalogError(
                f"{path.name}: ${name} is a member of $filters: read the table through "
                "filtered(table, $filters) instead"
            )
    undeclared = [n for n in used if n not in params]
    unused = [n for n in params if n not in used]
    if undeclared:
        raise CatalogError(f"{path.name}: SQL uses ${', $'.join(undeclared)} but the header does not declare it")
    if unused:
        raise CatalogError(f"{path.name}: header declares {', '.join(unused)} but the SQL does not use it")
    return params


# libyaml's safe loader where PyYAML was built with it: the same documents, read about ten times as fast (the
# catalog is read again whenever a file in queries/ changes, and on every start)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(path: Path) -> Query:
    """Read one query file and validate its header against its SQL."""
    header, sql = split_header(path.read_text())
    try:
        meta = yaml.load(header, Loader=_LOADER) if header.strip() else None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path.name}: header is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(meta, dict):
        raise CatalogError(
            f"{path.name}: missing header (leading `--` comment lines of YAML with title and description)"
        )
    unknown = set(meta) - HEADER_KEYS
    if unknown:
        raise CatalogError(f"{path.name}: unknown header keys {sorted(unknown)}")
    for key in ("title", "description"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise CatalogError(f"{path.name}: header needs a {key}")
    if "summary" in meta and (not isinstance(meta["summary"], str) or not meta["summary"].strip()):
        raise CatalogError(f"{path.name}: summary must be one plain sentence")
    if not sql.strip():
        raise CatalogError(f"{path.name}: no SQL after the header")
    params = _params(path, meta.get("params") or {}, sql)
    chart = meta.get("chart") or {}
    if not isinstance(chart, dict) or (chart and not isinstance(chart.get("kind"), str)):
        raise CatalogError(f"{path.name}: chart must be a mapping with a kind (see docs/adding-a-query.md)")
    site_free = meta.get("site_free", False)
    if not isinstance(site_free, bool):
        raise CatalogError(f"{path.name}: site_free must be true or false")
    _check_site_scope(path, sql, params, site_free)
    model = _check_model(path, meta.get("model"), params)
    suppress = meta.get("suppress") or {}
    if set(suppress) - {"counts", "rates", "stats", "keys", "totals", "total_rows", "curve", "other", "headline"}:
        raise CatalogError(
            f"{path.name}: suppress takes counts, rates, stats, keys, totals, total_rows, curve, other and headline"
        )
    if not set(suppress.get("headline") or []) <= set(suppress.get("counts") or []):
        raise CatalogError(f"{path.name}: suppress headline lists declared counts (hidden last to protect another)")
    if suppress.get("other") is not None and (
        not isinstance(suppress["other"], list) or suppress.get("stats") or suppress.get("curve")
    ):
        raise CatalogError(f"{path.name}: suppress other is a list of category columns, for counts and rates only")
    _check_relations(path, suppress)
    _check_curve(path, suppress)
    page, order, panel = _placement(path, meta)
    area = meta.get("area", page or "other")
    if area not in AREAS:
        raise CatalogError(f"{path.name}: area must be one of {', '.join(AREAS)}")
    return Query(
        path.stem,
        path,
        meta["title"].strip(),
        " ".join(meta["description"].split()),
        sql,
        params,
        chart,
        area,
        suppress,
        (meta.get("definition") or "").strip(),
        int(meta.get("unstable_below", UNSTABLE_BELOW)),
        site_free,
        page,
        order,
        panel,
        model,
        " ".join((meta.get("summary") or "").split()),
    )


def _placement(path: Path, meta: dict) -> tuple[str | None, int, dict]:
    """`page`, `order` and `panel` from the header: where a director page draws the query, and how."""
    page, order, panel = meta.get("page"), meta.get("order", 0), meta.get("panel") or {}
    if page is not None and page not in PAGES:
        raise CatalogError(f"{path.name}: page must be one of {', '.join(PAGES)}")
    if not isinstance(order, int) or isinstance(order, bool):
        raise CatalogError(f"{path.name}: order must be a whole number (its place among the page's panels)")
    if page and not meta.get("chart"):
        raise CatalogError(f"{path.name}: a query with a page needs a chart")
    if not isinstance(panel, dict) or set(panel) - PANEL_KEYS:
        raise CatalogError(f"{path.name}: panel takes {', '.join(sorted(PANEL_KEYS))}")
    if not isinstance(panel.get("vars", {}), dict):
        raise CatalogError(f"{path.name}: panel vars must map a name to its default value")
    return page, order, panel


def _check_model(path: Path, model, params: dict) -> str:
    """`model: NAME` names a registered post-step; the runner fits it over every site, so it needs $filters."""
    from outcomes.measures.models import REGISTRY

    if model is None:
        return ""
    if model not in REGISTRY:
        raise CatalogError(f"{path.name}: model must be one of {', '.join(sorted(REGISTRY))}")
    if "filters" not in params:
        raise CatalogError(f"{path.name}: a model query must take $filters")
    return model


@functools.cache
def episode_sources() -> frozenset[str]:
    """Tables and table macros holding episode-level data: the contract's tables and what queries/_build makes."""
    from outcomes.ingest.contract import TABLES

    names = set(TABLES)
    for path in BUILD_DIR.glob("*.sql"):
        text = path.read_text().lower()
        names |= set(re.findall(r"create\s+(?:or\s+replace\s+)?(?:temp\s+)?(?:table|view)\s+([a-z_][a-z0-9_]*)", text))
        names |= set(
            re.findall(r"create\s+(?:or\s+replace\s+)?macro\s+([a-z_][a-z0-9_]*)\s*\([^)]*\)\s*as\s+table", text)
        )
    return frozenset(names - SITE_FREE_SOURCES)


def _check_site_scope(path: Path, sql: str, params: dict, site_free: bool) -> None:
    """Every query that reads episode data takes `$filters` (which holds the sites), so a site scope applies."""
    reads = sorted(words(sql) & episode_sources())
    if site_free and "filters" in params:
        raise CatalogError(f"{path.name}: declares site_free but takes $filters; drop one")
    if site_free and reads:
        raise CatalogError(f"{path.name}: declares site_free but reads episode data ({', '.join(reads)})")
    if reads and "filters" not in params:
        raise CatalogError(
            f"{path.name}: reads episode data ({', '.join(reads)}) but does not take $filters "
            "(read it through filtered(table, $filters)), so a user's site scope could not apply to it"
        )


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
            raise CatalogError(
                f"{path.name}: suppress totals {total}: parts must be distinct declared counts, "
                f"and at most one unshown ~part ({', '.join(map(str, wrong)) or 'check the list'})"
            )
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
    if (
        not isinstance(curve["by"], list)
        or {curve["at_risk"], curve["events"], curve.get("total", curve["events"])} - counts
    ):
        raise CatalogError(
            f"{path.name}: suppress curve: by must be a list, and at_risk, events and total declared counts"
        )


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
