"""Overview tiles: the reporting period, the one before it, and each tile's numbers from the KPI queries.

Every number on a tile is a value of a catalog query's (suppressed) output: `queries/kpi_*.sql` (and
stepdown_rate, fui_followup) run once with grain=periods for all the periods (the one shown, the one before, and
earlier ones for the line under the number; one row per period, each equal to a grain=period run for that period
alone), and `queries/census.sql` for the active census. This module decides which dates each query gets and formats
what comes back; it never adds up rows, so a hidden cell can never flow into a tile.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass, field

import pandas as pd

from outcomes.measures import noise

DEFAULT_MONTHS = 3  # the default period: this many full months up to the data-through date
TREND_PERIODS = 6  # the line under a tile: the value for this many periods of equal length, the last one shown
CENSUS_WEEKS = 26  # the census trend: this many weeks up to the period's end
LEVELS = ["withdrawal_management", "residential", "php", "iop", "op"]
LEVEL_LABELS = {
    "withdrawal_management": "Withdrawal mgmt",
    "residential": "Residential",
    "php": "PHP",
    "iop": "IOP",
    "op": "OP",
}


def month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day of the month `months` later (or earlier), clipped to the month's length."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def whole_months(self) -> int | None:
        """How many calendar months the period spans when it runs from a 1st to a month end, else None."""
        if self.start.day != 1 or self.end != month_end(self.end) or self.end < self.start:
            return None
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    def label(self) -> str:
        if self.start.year == self.end.year:
            return f"{self.start:%-d %b} – {self.end:%-d %b %Y}"
        return f"{self.start:%-d %b %Y} – {self.end:%-d %b %Y}"

    def shifted(self, days: int) -> Period:
        return Period(self.start - dt.timedelta(days=days), self.end - dt.timedelta(days=days))


def default_period(data_through: dt.date, months: int = DEFAULT_MONTHS) -> Period:
    """The last `months` full calendar months up to the data-through date (its own month only when complete)."""
    end = (
        data_through if data_through == month_end(data_through) else data_through.replace(day=1) - dt.timedelta(days=1)
    )
    return Period(add_months(end.replace(day=1), -(months - 1)), end)


def period_from(start: dt.date | None, end: dt.date | None, data_through: dt.date) -> tuple[Period, bool]:
    """The period the sidebar asks for, and whether it is the default one.

    No dates: the default period. Only From: From to the data-through date. Only To: the three months
    ending then (from the 1st of the month two months before). A To after the data-through date is cut
    back to it, since nothing after it is known.
    """
    if start is None and end is None:
        return default_period(data_through), True
    end = min(end or data_through, data_through)
    start = start or add_months(end.replace(day=1), -(DEFAULT_MONTHS - 1))
    return Period(start, end), False


def previous_period(period: Period) -> Period:
    """The period of equal length just before: the same number of whole months, or else of days."""
    months = period.whole_months
    end = period.start - dt.timedelta(days=1)
    if months:
        return Period(add_months(period.start, -months), end)
    return Period(end - dt.timedelta(days=period.days - 1), end)


def periods_before(period: Period, count: int = TREND_PERIODS) -> list[Period]:
    """`count` periods of equal length ending with `period`, oldest first (so [-2] is the previous period)."""
    out = [period]
    while len(out) < count:
        out.append(previous_period(out[-1]))
    return out[::-1]


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    query: str
    value: str  # the column shown
    n: str  # its denominator or n
    n_unit: str
    kind: str  # "rate" or "days"
    better: str  # "up" or "down": which direction of change is an improvement
    params: dict = field(default_factory=dict)
    lag_days: int = 0  # the query's date range is the period moved back this many days
    note: str = ""

    def range_for(self, period: Period) -> Period:
        return period.shifted(self.lag_days)

    def query_params(self, period: Period, grain: str = "period") -> dict:
        shown = self.range_for(period)
        return self.params | {"grain": grain, "start": shown.start, "end": shown.end}

    def periods_params(self, periods: list[Period]) -> dict:
        """The query's parameters for one run over consecutive `periods` (oldest first): grain=periods, one row
        per period, each equal to the grain=period row for that period alone."""
        ranges = [self.range_for(p) for p in periods]
        return self.params | {
            "grain": "periods",
            "period_starts": [r.start for r in ranges],
            "start": ranges[0].start,
            "end": ranges[-1].end,
        }

    def by_period(self, df: pd.DataFrame, periods: list[Period]) -> list[pd.DataFrame]:
        """A grain=periods result split into one result per period, as a grain=period run of each would give
        (no row when the period has none)."""
        starts = pd.to_datetime(df["month"]).dt.date.to_numpy()
        blank = pd.Series(pd.NaT, index=df.index, dtype=df["month"].dtype)  # grain=period leaves month empty
        return [df.assign(month=blank)[starts == self.range_for(p).start].reset_index(drop=True) for p in periods]


KPIS = [
    Kpi(
        "stepdown",
        "14-day step-down",
        "stepdown_rate",
        "stepdown_rate",
        "eligible_discharges",
        "discharges",
        "rate",
        "up",
        {"window_days": 14},
        note="Residential discharges in the period with an attended IOP session on day 0–14. Discharges in the "
        "last 14 days before the data-through date are left out until their 14 days have passed.",
    ),
    Kpi(
        "days_to_iop",
        "Days to first IOP",
        "kpi_days_to_iop",
        "median_days",
        "stepped_down",
        "step-downs",
        "days",
        "down",
        {"max_day": 30},
        note="Median days from residential discharge to the first attended IOP session, among discharges that "
        "reached IOP within 30 days.",
    ),
    Kpi(
        "attendance",
        "IOP attendance",
        "kpi_iop_attendance",
        "attendance_rate",
        "scheduled",
        "sessions",
        "rate",
        "up",
        note="Attended IOP sessions as a share of scheduled ones (program-cancelled left out), by session date.",
    ),
    Kpi(
        "retention",
        "90-day retention",
        "kpi_iop_retention",
        "retained",
        "at_risk",
        "at risk on day 90",
        "rate",
        "up",
        {"day": 90},
        lag_days=90,
        note="Kaplan–Meier share of IOP episodes not dropped out by day 90, for IOP admissions 90 days before the "
        "period, so that each has had its 90 days.",
    ),
    Kpi(
        "fui7",
        "7-day follow-up",
        "fui_followup",
        "followup_rate",
        "eligible_discharges",
        "discharges",
        "rate",
        "up",
        {"window_days": 7},
        note="FUI-aligned: residential and withdrawal management discharges with an attended PHP, IOP or OP "
        "session on day 1–7.",
    ),
]


def _number(v) -> float | None:
    if v is None or v is pd.NA:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def format_value(kind: str, v) -> str:
    """A tile's value as text: 41.0%, 3 days, 1,234; an em dash when there is none."""
    v = _number(v)
    if v is None:
        return "—"
    if kind == "rate":
        return f"{v:.1%}"
    if kind == "days":
        return f"{v:.1f} days".replace(".0 days", " days")
    return f"{v:,.0f}"


def format_delta(kind: str, current, previous) -> str | None:
    """The change from the previous period: percentage points for rates, days, or a signed count."""
    a, b = _number(current), _number(previous)
    if a is None or b is None:
        return None
    d = a - b
    if kind == "rate":
        return f"{d * 100:+.1f} pp"
    if kind == "days":
        return f"{d:+.1f} days"
    return f"{d:+,.0f}"


@dataclass
class Tile:
    label: str
    value: str
    delta: str | None
    delta_color: str  # for st.metric: "normal", "inverse" or "off"
    n_text: str  # the n, or why a value is missing
    previous_text: str
    help: str
    trend: list = field(default_factory=list)
    number: float | None = None
    previous: float | None = None
    change: str = ""  # whether the change is beyond chance, in two or three words (why it is coloured or grey)

    @property
    def note(self) -> str:
        parts = [self.n_text, f"previous {self.previous_text}", self.change]
        return " · ".join(p for p in parts if p)


def only_row(df: pd.DataFrame | None) -> pd.Series | None:
    """The single row of a grain=period result (None when the query matched nothing)."""
    if df is None or df.empty:
        return None
    return df.iloc[0]


# Filled in by the page from the query's reasons (outcomes.present.hidden.tag): how a hidden value and a
# hidden n read on a tile ("1–10", "too few", "hidden"); absent, a hidden value reads "hidden".
VALUE_TAG, N_TAG = "_value_tag", "_n_tag"


def _n_note(n, unit: str, unstable_below: int, tag: str | None = None) -> str:
    n = _number(n)
    if n is None:
        if tag == "1–10":
            return f"{unit}: 1–10, too few to show"
        return f"{unit}: hidden so that a small number cannot be worked out"
    if n == 0:
        return f"no {unit}"
    return f"n = {n:,.0f} {unit}" + (" · unstable (n < 30)" if n < unstable_below else "")


def tile(kpi: Kpi, results: list[pd.DataFrame | None], periods: list[Period], unstable_below: int = 30) -> Tile:
    """One KPI tile from its query's suppressed grain=period results for `periods` (oldest first, the last
    the period shown): the value, the change from the one before, and the line through all of them."""
    values = [_number(row[kpi.value]) if (row := only_row(df)) is not None else None for df in results]
    row = only_row(results[-1])
    value, old = values[-1], values[-2] if len(values) > 1 else None
    n_text = _n_note(row[kpi.n] if row is not None else 0, kpi.n_unit, unstable_below, _get(row, N_TAG))
    verdict = _verdict(kpi, results)
    shown = kpi.range_for(periods[-1])
    help_text = kpi.note + f"\n\nThis period: {shown.label()}."
    if len(periods) > 1:
        help_text += f" Previous: {kpi.range_for(periods[-2]).label()}."
    help_text += (
        f" The line: the same measure for the {len(periods)} periods up to this one. Query: `queries/{kpi.query}.sql`."
    )
    delta = format_delta(kpi.kind, value, old)
    if delta:
        help_text += f"\n\nChange: {verdict.reason}."
    return Tile(
        kpi.label,
        _hidden_value(kpi.kind, value, row),
        delta,
        ("normal" if kpi.better == "up" else "inverse") if verdict.beyond else "off",
        n_text,
        _hidden_value(kpi.kind, old, only_row(results[-2]) if len(results) > 1 else None),
        help_text,
        values,
        value,
        old,
        _change_words(verdict) if delta else "",
    )


def _get(row, key):
    return None if row is None or key not in row.index else row[key]


def _hidden_value(kind: str, value, row) -> str:
    """The tile's value as text; a hidden one by its label ("1–10", "too few", "hidden"), never a dash that
    could read as "no data"."""
    if value is None and row is not None:
        return _get(row, VALUE_TAG) or "hidden"
    return format_value(kind, value)


def _change_words(verdict: noise.Verdict) -> str:
    if verdict.beyond is None:
        return "change not tested (grey)"
    return "change beyond chance" if verdict.beyond else "change within chance (grey)"


def _verdict(kpi: Kpi, results: list[pd.DataFrame | None]) -> noise.Verdict:
    """Whether the change from the previous period is beyond chance: rates by a two-proportion test on their
    n; a median is not tested (its change is shown in grey)."""
    if kpi.kind != "rate":
        return noise.Verdict(None, "a change in a median is not tested for chance, so it stays grey")
    if len(results) < 2:
        return noise.Verdict(None, "no previous period")
    now, before = only_row(results[-1]), only_row(results[-2])
    if now is None or before is None:
        return noise.Verdict(None, "not tested: a period has no rows")
    return noise.two_proportions(
        _number(now[kpi.value]), _number(now[kpi.n]), _number(before[kpi.value]), _number(before[kpi.n])
    )


def census_params(period: Period, weeks: int = CENSUS_WEEKS) -> dict:
    """census.sql for the weeks up to the period's end, as it stood then (as_of = the period's end)."""
    return {"as_of": period.end, "start": period.end - dt.timedelta(weeks=weeks - 1), "end": period.end}


def census_tiles(current: pd.DataFrame, previous: pd.DataFrame, period: Period, before: Period) -> list[Tile]:
    """Active clients by level in the week holding the period's last day, against the previous period's."""
    tiles = []
    for level in sorted(
        set(current["level_of_care"]) | set(previous["level_of_care"]),
        key=lambda lv: LEVELS.index(lv) if lv in LEVELS else len(LEVELS),
    ):
        now = current[current["level_of_care"] == level].sort_values("week_start")
        then = previous[previous["level_of_care"] == level].sort_values("week_start")
        value = _number(now["active_clients"].iloc[-1]) if len(now) else None
        old = _number(then["active_clients"].iloc[-1]) if len(then) else None
        week = now["week_start"].iloc[-1] if len(now) else None
        last = now.iloc[-1] if len(now) else None
        n_text = ""
        if value is None and last is not None:
            n_text = "1–10: too few to show" if _get(last, VALUE_TAG) == "1–10" else "hidden to protect a small number"
        help_text = (
            f"Distinct clients with an episode at this level overlapping the week of {period.end:%-d %b %Y}"
            + (f" (week starting {pd.Timestamp(week):%-d %b})" if week is not None else "")
            + f", against the week of {before.end:%-d %b %Y}. Query: `queries/census.sql`."
        )
        tiles.append(
            Tile(
                LEVEL_LABELS.get(level, level),
                _hidden_value("count", value, last),
                format_delta("count", value, old),
                "off",
                n_text,
                _hidden_value("count", old, then.iloc[-1] if len(then) else None),
                help_text,
                [_number(v) for v in now["active_clients"]],
                value,
                old,
            )
        )
    return tiles


def summary_rows(tiles: list[Tile]) -> pd.DataFrame:
    """The tiles as a table (for the PDF and the CSV): what each shows now, before, and the change."""
    return pd.DataFrame(
        {
            "measure": [t.label for t in tiles],
            "this period": [t.value for t in tiles],
            "previous period": [t.previous_text for t in tiles],
            "change": [t.delta or "—" for t in tiles],
            "n": [t.n_text or "—" for t in tiles],
        }
    )
