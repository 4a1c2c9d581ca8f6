"""New catalog files: `python -m outcomes new NAME`, and "Save as query" for an ad-hoc statement."""

from __future__ import annotations

import re
from pathlib import Path

from outcomes.paths import QUERY_DIR

NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


class ScaffoldError(ValueError):
    """The name is not usable or the file exists; the message says which."""


HEADER = """\
-- title: TODO short title ({name})
-- summary: >
--   TODO one plain sentence of what the chart shows, for a director: no parameter names.
-- description: >
--   TODO one or two sentences: what is counted, for whom, and why it matters; in the Definition popover's
--   exact rules (the summary is shown under the chart). As written, this file counts discharges by month
--   and the share with one discharge reason: replace the example with your question.
-- definition: |
--   Population: TODO which episodes, sessions or clients; which dates; inclusive or exclusive bounds.
--   Numerator: TODO. Denominator: TODO. Rate = numerator / denominator, grouped by TODO.
--   Standard: TODO the published measure this follows (or "ours"), and how it differs.
-- area: other  # Explore groups queries by area: stepdown, engagement, retention, pathways, overview, other
-- # page: retention  # uncomment to draw it on that director page too
-- order: 60  # its place among the page's panels (theirs are 10, 20, 30...; see docs/adding-a-query.md)
-- panel:
--   title: "Discharges by month: {{reason}}"  # {{name}}: a parameter's value (or a panel var)
--   empty: No discharges match these filters.
-- params:
--   # One entry per $name in the SQL, and no other. Types: date, int, float, text, list, choice, bool, dates.
--   # No default means null, which by convention means "no limit".
--   # The sidebar's filters need no entry: $filters (sites and client group, for filtered(table, $filters)),
--   # $tracks, $start and $end are given by name alone.
--   as_of: {{type: date, default: data_through, label: As of}}  # data_through: the load's date
--   min_days: {{type: int, default: 0, label: Shortest stay (days)}}
--   max_years: {{type: float, default: 10.0, label: Longest stay (years)}}
--   reason:
--     type: choice
--     choices: [completed, left_against_advice, administrative, transferred, other]
--     default: completed
--     label: Discharge reason
--   levels: {{type: list, options: level_of_care, label: Levels of care}}  # options: a filter_options name
--   include_transfers: {{type: bool, default: true, label: Count transfers}}
--   payer_contains: {{type: text, label: Payer contains}}
--   skip_days: {{type: dates, label: Discharge days left out}}  # a list of dates
-- chart: {{kind: rate_lines, x: month, y: reason_rate, n: discharges, y_label: With the reason}}
-- suppress:
--   counts: [discharges, with_reason]
--   rates:
--     reason_rate: [with_reason, discharges]
--   stats:
--     median_stay_days: discharges
-- unstable_below: 30
"""

BODY = """
with

population as (
    select
        level_of_care,
        discharge_date,
        discharge_reason,
        discharge_date - admit_date as stay_days
    from filtered(episodes, $filters)
    where
        discharge_date <= $as_of
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
        and discharge_date - admit_date between $min_days and $max_years * 365.25
        and ($levels is null or list_contains($levels, level_of_care))
        and (coalesce($include_transfers, true) or discharge_reason != 'transferred')
        and ($payer_contains is null or contains(lower(payer), lower($payer_contains)))
        and ($skip_days is null or not list_contains($skip_days, discharge_date))
),

monthly as (
    select
        date_trunc('month', discharge_date)::date as month,
        count(*) as discharges,
        count(*) filter (where discharge_reason = $reason) as with_reason,
        median(stay_days) as median_stay_days
    from population
    group by 1
),

final as (
    select
        month,
        discharges,
        with_reason,
        with_reason / discharges as reason_rate,
        median_stay_days
    from monthly
)

select * from final
order by month
"""


def check_name(name: str, directory: Path = QUERY_DIR) -> Path:
    """The path for a new query called `name`; raises ScaffoldError if the name is bad or the file exists."""
    if not NAME.match(name or ""):
        raise ScaffoldError(
            f"{name!r} is not a query name: use lower_snake_case letters and digits, "
            "starting with a letter (e.g. stepdown_by_payer)"
        )
    path = Path(directory) / f"{name}.sql"
    if path.exists():
        raise ScaffoldError(f"{path} already exists; choose another name")
    return path


def template(name: str) -> str:
    """A complete, working catalog file: every header key, every parameter type, CTEs ending in `final`."""
    return HEADER.format(name=name) + BODY


def new(name: str, directory: Path = QUERY_DIR) -> Path:
    """Write `directory/NAME.sql` from the template; refuses an existing file or a bad name."""
    path = check_name(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x") as f:  # "x": never overwrite, even if the file appeared meanwhile
        f.write(template(name))
    return path


def from_statement(
    sql: str, name: str = "new_query", counts: list[str] | None = None, others: list[str] | None = None
) -> str:
    """An ad-hoc statement as a catalog file with a complete header to fill in.

    `counts` (integer columns) are declared as counts; `others` (other numeric columns) are listed for the
    analyst to give a role. The result parses once filled in; `python -m outcomes check` says what is missing.
    """
    counts, others = list(counts or []), list(others or [])
    todo_roles = ""
    if others:
        todo_roles = (
            "--   # TODO give each of these a role, as rates: {col: [numerator, denominator]} or stats: "
            "{col: n_column}:\n--   #   " + ", ".join(others) + "\n"
        )
    body = sql.strip().rstrip(";").rstrip()
    return (
        f"-- title: TODO short title ({name})\n"
        "-- description: >\n"
        "--   TODO one or two sentences: what is counted, for whom, and why it matters.\n"
        "-- definition: |\n"
        "--   Population: TODO. Numerator: TODO. Denominator: TODO. Grouped by TODO.\n"
        "-- area: other\n"
        "-- params:\n"
        "--   # TODO a query that reads episodes must read them through filtered(episodes, $filters), so that\n"
        "--   # the sidebar's sites and client group (and a user's site scope) apply. Types: date, int, float,\n"
        "--   # text, list, choice, bool, dates, e.g.\n"
        "--   # window_days: {type: int, default: 14, label: Window (days)}\n"
        "-- chart: {kind: table}  # or p_chart, rate_lines, rate_bars, ... (docs/adding-a-query.md)\n"
        "-- suppress:\n"
        f"--   counts: [{', '.join(counts)}]\n"
        f"{todo_roles}"
        "\n"
        "-- TODO restyle as CTEs ending in `select * from final` (see docs/adding-a-query.md)\n"
        f"{body}\n"
    )
