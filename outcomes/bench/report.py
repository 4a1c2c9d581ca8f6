"""A benchmark result against its targets, as plain-text tables, and as a Markdown table for the README."""

from __future__ import annotations

from outcomes.bench.spark import spark_summary

# Targets at 1M clients on 2 cores: (what, limit, unit, higher is better).
TARGETS = {
    "load_seconds": ("load + validate", 120.0, "s", False),
    "query_ms_max": ("slowest catalog query, median warm", 150.0, "ms", False),
    "page_first_ms_max": ("slowest first render of a page", 800.0, "ms", False),
    "page_filter_change_ms_max": ("slowest page rerun after a filter change", 300.0, "ms", False),
    "page_filter_change_ahead_ms_max": (
        "slowest rerun after a change of sites, page idle first (views made ahead)",
        300.0,
        "ms",
        False,
    ),
    "page_cached_ms_max": ("slowest cached page rerun", 50.0, "ms", False),
    "browser_filter_change_ms_max": ("slowest page in Chromium after a filter change", 1500.0, "ms", False),
    "peak_memory_mb": ("peak memory, load and serving", 3072.0, "MB", False),
    "engagement_speedup": ("engagement_by_week, pandas / served", 20.0, "x", True),
}
ENGINE_NAMES = {"duckdb_base": "DuckDB from base", "polars": "Polars", "pandas": "pandas"}


def _max(values) -> float | None:
    return max((v for v in values if v is not None), default=None)


def targets(result: dict) -> dict:
    """Each target with the measured value and whether it was met."""
    queries = [q.get(f"{k}_ms") for q in result["queries"] for k in ("default", "filtered")]
    pages = result["pages"]
    browser = (result.get("browser") or {}).get("pages", [])
    engagement = [m["pandas_over_served"] for m in result["ratios"]["measures"] if m["name"] == "engagement_by_week"]
    values = {
        "load_seconds": result["load"]["seconds"],
        "query_ms_max": _max(queries),
        "page_first_ms_max": _max(p.get("first_ms") for p in pages),
        "page_filter_change_ms_max": _max(p.get("filter_change_ms") for p in pages),
        "page_filter_change_ahead_ms_max": _max(p.get("filter_change_ahead_ms") for p in pages),
        "page_cached_ms_max": _max(p.get("cached_ms") for p in pages),
        "browser_filter_change_ms_max": _max(p.get("filter_change_ms") for p in browser),
        "peak_memory_mb": max(result["load"]["peak_rss_mb"], result["serving_peak_rss_mb"]),
        "engagement_speedup": min((s for s in engagement if s is not None), default=None),
    }
    out = {}
    for key, (what, limit, unit, higher) in TARGETS.items():
        value = values[key]
        met = None if value is None else (value >= limit if higher else value <= limit)
        out[key] = {"what": what, "target": limit, "unit": unit, "value": value, "met": met}
    return out


def _ms(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def browser_table(result: dict) -> list[str]:
    """The browser timings as a Markdown table (medians, ms to the last chart drawn), ready for the README."""
    b = result.get("browser")
    if not b:
        return []
    lines = [
        "| page | first visit | second visit | filter change | sites change after reading | shared link, fresh browser |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in b["pages"]:
        lines.append(
            f"| {p['title']} | {_ms(p.get('first_visit_ms'))} | {_ms(p.get('second_visit_ms'))} "
            f"| {_ms(p.get('filter_change_ms'))} | {_ms(p.get('filter_change_ahead_ms'))} "
            f"| {_ms(p.get('shared_link_ms'))} |"
        )
    pdf = b.get("pdf") or {}
    fresh = b.get("first_start") or {}
    lines += [
        "",
        f"Server start to healthy {b['server_start_s'] or 0:.1f} s; first page after a server start "
        f"{_ms(b.get('after_start_ms'))} ms; Step-down PDF prepared in {_ms(pdf.get('first_ms'))} ms "
        f"(again: {_ms(pdf.get('second_ms'))} ms)"
        + (
            f"; fresh clone (demo build and first page) {fresh['seconds']:.1f} s"
            if fresh.get("seconds") is not None
            else ""
        )
        + f". Medians of {b['rounds']} server starts, {result['clients']:,} clients.",
    ]
    return lines


def ratios_table(result: dict) -> list[str]:
    """The headline measures served and from the base tables as a Markdown table (ms), ready for the README."""
    lines = [
        "| measure | params | served (load-time tables) | DuckDB from base tables | Polars | pandas "
        "| pandas ÷ DuckDB base | same rows |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for x in result["ratios"]["measures"]:
        same = all(x[f"{k}_equal"] for k in ENGINE_NAMES)
        lines.append(
            f"| `{x['name']}` | {x['params']} | {_ms(x['served_ms'])} | {_ms(x['duckdb_base_ms'])} "
            f"| {_ms(x['polars_ms'])} | {_ms(x['pandas_ms'])} | {x['pandas_over_duckdb_base'] or 0:.1f}× "
            f"| {'yes' if same else 'no'} |"
        )
    return lines


def ratios_lines(result: dict) -> list[str]:
    r = result["ratios"]
    engines = "; ".join(
        f"{ENGINE_NAMES[k]}: read {v['read_seconds']:.1f} s, peak {v['peak_rss_mb']:,.0f} MB, {v['runs']} run(s)"
        + (" after a warm-up" if v["warm_up"] else "")
        for k, v in r["engines"].items()
    )
    lines = [
        "",
        "headline measures: served (catalog on the load-time tables) and computed from the base tables",
        f"  {engines}",
        f"{'measure':<20}{'params':<10}{'served':>8}{'DuckDB base':>13}{'Polars':>9}{'pandas':>9}"
        f"{'pandas/base':>13}{'polars/base':>13}  same rows",
    ]
    for x in r["measures"]:
        same = all(x[f"{k}_equal"] for k in ENGINE_NAMES)
        detail = "yes" if same else "NO: " + "; ".join(f"{k} {x[f'{k}_detail']}" for k in ENGINE_NAMES)
        lines.append(
            f"{x['name']:<20}{x['params']:<10}{_ms(x['served_ms']):>8}{_ms(x['duckdb_base_ms']):>13}"
            f"{_ms(x['polars_ms']):>9}{_ms(x['pandas_ms']):>9}{x['pandas_over_duckdb_base'] or 0:>12.1f}x"
            f"{x['polars_over_duckdb_base'] or 0:>12.1f}x  {detail}"
        )
    return lines


def summary(result: dict) -> str:
    """The result as plain-text tables."""
    m, rows = result["machine"], result["rows"]
    load = result["load"]
    lines = [
        f"{result['clients']:,} clients: {rows['enrollments']:,} episodes, {rows['attendance']:,} sessions, "
        f"{rows['transitions']:,} referrals",
        f"{m['cores']} cores, {m['memory_mb'] or 0:,} MB, {m['cpu']}; Python {m['python']}, duckdb {m['duckdb']}, "
        f"pandas {m['pandas']}, streamlit {m['streamlit']}; load average at start {m['load_average']}, "
        f"at the end {m.get('load_average_end')}",
        "",
        f"demo generation {result['generate']['seconds']:.1f} s (peak {result['generate'].get('peak_rss_mb', 0):,.0f} MB)"
        f"{' (reused)' if result['generate'].get('reused') else ''}",
        f"load + validate {load['seconds']:.1f} s, median of {load['runs_seconds']} (peak {load['peak_rss_mb']:,.0f} MB; "
        f"database {load['database_mb']:,.0f} MB)",
        "  " + ", ".join(f"{k} {v:.1f} s" for k, v in load["phases"].items()),
        f"serving peak {result['serving_peak_rss_mb']:,.0f} MB (queries and pages in one process)",
        *spark_summary(result),
        "",
        f"{'query (median warm)':<28}{'default ms':>12}{'filtered ms':>13}{'cpu ms':>16}",
    ]
    for q in result["queries"]:
        cells = [f"{q[k]:>.1f}" if k in q else "error" for k in ("default_ms", "filtered_ms")]
        cpu = "/".join(f"{q[k]:.0f}" if k in q else "-" for k in ("default_cpu_ms", "filtered_cpu_ms"))
        lines.append(f"{q['name']:<28}{cells[0]:>12}{cells[1]:>13}{cpu:>16}")
    lines += [
        "",
        f"{'page (server, AppTest)':<28}{'first ms':>10}{'filter change ms':>18}{'cached ms':>11}"
        f"{'sites change, made ahead ms':>29}",
    ]
    for p in result["pages"]:
        change = f"{p['filter_change_ms']:.1f}" if "filter_change_ms" in p else "-"
        ahead = (
            f"{p['filter_change_ahead_ms']:.1f} (ready {p['ahead_seconds']:.1f} s)"
            if "filter_change_ahead_ms" in p
            else "-"
        )
        lines.append(
            f"{p['page']:<28}{p['first_ms']:>10.1f}{change:>18}{p['cached_ms']:>11.1f}{ahead:>29}"
            + (f"  problems: {'; '.join(p['problems'])}" if p["problems"] else "")
        )
    if result.get("browser"):
        lines += ["", "in Chromium (ms to the last chart drawn, medians):", *browser_table(result)]
        if result["browser"].get("problems"):
            lines.append("  problems: " + "; ".join(result["browser"]["problems"]))
    lines += ratios_lines(result)
    lines += ["", f"{'target':<48}{'limit':>10}{'measured':>12}  met"]
    for t in result["targets"].values():
        sign = ">=" if t["unit"] == "x" else "<="
        value = "-" if t["value"] is None else f"{t['value']:,.1f}"
        lines.append(
            f"{t['what']:<48}{sign + ' ' + format(t['target'], ',g') + ' ' + t['unit']:>10}{value:>12}  "
            f"{'-' if t['met'] is None else 'yes' if t['met'] else 'NO'}"
        )
    return "\n".join(lines)
