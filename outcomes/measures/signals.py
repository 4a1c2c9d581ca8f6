"""Signals on rate-over-time series: statistical process control rules on the p-charts the pages draw.

Three rules, on the points of a monthly series whose counts are shown (a hidden point is no point at all):

- `outside_limits`: a point outside the 3-sigma limits of the p-chart (Laney p' limits where the chart uses
  them: `stats.p_chart(method="auto")`, exactly as `control_charts.rate_p_chart` draws them);
- `long_run`: a run of points on one side of the centre line longer than round(log2(n) + 3);
- `few_crossings`: fewer crossings of the centre line than the lower 5% quantile of a binomial distribution
  with n - 1 trials and p = 0.5.

n is the number of useful points: shown points not on the centre line (those neither count nor break a run).
The run rules are Anhøj's (Anhøj J, Olesen AV. Run charts revisited: a simulation study of run chart rules for
detection of non-random variation in health care processes. PLoS ONE 2014;9(11):e113825,
doi:10.1371/journal.pone.0113825, whose table of critical values these formulas reproduce). The centre line is
the p-chart's p-bar, as drawn. A series with fewer than MIN_POINTS shown points gets no signals: the table of
critical values starts at 10 useful points, and limits from fewer points are too unsteady to call anything.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field

import pandas as pd

MIN_POINTS = 10
RULES = ("outside_limits", "long_run", "few_crossings")


@dataclass(frozen=True)
class Series:
    """A monthly rate series from a catalog query: `events` of `n` per `month`, its own `rate` column."""

    key: str
    label: str
    query: str
    params: dict
    events: str
    n: str
    rate: str
    where: dict = field(default_factory=dict)  # keep rows whose columns hold these values


# Every monthly rate series the signals scan. One place; later derived from chart declarations in query headers.
SERIES = (
    Series(
        "stepdown_14",
        "14-day step-down",
        "stepdown_rate",
        {"window_days": 14},
        "stepped_down",
        "eligible_discharges",
        "stepdown_rate",
    ),
    Series(
        "followup_7",
        "7-day follow-up",
        "fui_followup",
        {"window_days": 7},
        "followed_up",
        "eligible_discharges",
        "followup_rate",
    ),
    Series(
        "iop_completion",
        "IOP completion",
        "discharge_outcomes",
        {},
        "completed",
        "discharges",
        "completion_rate",
        {"level_of_care": "iop"},
    ),
    Series(
        "iop_attendance",
        "IOP attendance",
        "kpi_iop_attendance",
        {"grain": "month"},
        "attended",
        "scheduled",
        "attendance_rate",
    ),
    Series(
        "readmission_30_residential",
        "30-day readmission after residential",
        "readmission",
        {},
        "readmitted_30",
        "discharges_30",
        "readmission_rate_30",
        {"level_of_care": "residential"},
    ),
    Series(
        "readmission_30_iop",
        "30-day readmission after IOP",
        "readmission",
        {},
        "readmitted_30",
        "discharges_30",
        "readmission_rate_30",
        {"level_of_care": "iop"},
    ),
)
SERIES_BY_KEY = {s.key: s for s in SERIES}


@dataclass(frozen=True)
class Signal:
    measure: str  # a Series key
    site: str  # '' for all the sites in view together
    rule: str  # one of RULES
    start_month: dt.date
    end_month: dt.date
    detail: str  # the numbers behind it
    sentence: str  # plain English, for under the chart
    direction: str = ""  # "above" or "below" the centre line; '' for few_crossings
    label: str = ""  # the measure as people read it
    months: tuple = ()  # the months of the points involved


@dataclass(frozen=True)
class Analysis:
    """What the rules found on one series, with the figures behind them (for the note under a chart)."""

    points: int  # shown points
    useful: int  # shown points not on the centre line
    longest_run: int
    run_limit: int | None  # a run longer than this is a signal; None with too few points
    crossings: int
    crossings_limit: int | None  # fewer crossings than this is a signal
    method: str  # "p" or "laney"
    signals: list[Signal]

    @property
    def enough(self) -> bool:
        return self.points >= MIN_POINTS


def longest_run_limit(n: int) -> int:
    """The longest run expected by chance among n useful points: round(log2(n) + 3)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    return round(math.log2(n) + 3)


def crossings_limit(n: int) -> int:
    """The fewest crossings expected by chance among n useful points: the lower 5% quantile of Binomial(n - 1,
    1/2), the smallest c with P(C <= c) >= 0.05, computed exactly in integers."""
    if n < 1:
        raise ValueError("n must be at least 1")
    trials, total, cumulative = n - 1, 2 ** (n - 1), 0
    for c in range(trials + 1):
        cumulative += math.comb(trials, c)
        if 20 * cumulative >= total:  # P(C <= c) >= 1/20
            return c
    return trials


def _month(value) -> dt.date:
    return pd.Timestamp(value).date()


UNITS = ("month", "quarter")  # the grains a series may have; sentences name their points by it


def _when(day: dt.date, unit: str = "month") -> str:
    return f"Q{(day.month - 1) // 3 + 1} {day.year}" if unit == "quarter" else f"{day:%b %Y}"


def _pair(a: float, b: float) -> tuple[str, str]:
    """Two shares as percentages with enough decimals to tell them apart (81.62% against 81.58%)."""
    for places in (1, 2, 3):
        x, y = f"{a:.{places}%}", f"{b:.{places}%}"
        if x != y:
            break
    return x, y


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def analyse(months, events, n, *, measure: str = "", label: str = "", site: str = "", unit: str = "month") -> Analysis:
    """Apply the three rules to one series in any order; a point whose events or n is missing (hidden) or whose
    n is 0 is left out. Counts must be whole numbers. `unit` (month or quarter) is how sentences name a point."""
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {UNITS}")
    when = functools.partial(_when, unit=unit)
    frame = pd.DataFrame(
        {
            "month": pd.to_datetime(pd.Series(list(months))),
            "events": pd.to_numeric(pd.Series(list(events)), errors="coerce").astype("float64"),
            "n": pd.to_numeric(pd.Series(list(n)), errors="coerce").astype("float64"),
        }
    )
    frame = frame.sort_values("month", kind="stable").reset_index(drop=True)
    if frame["month"].duplicated().any():
        raise ValueError("a series has one row per month; this one has several (a `where` is missing?)")
    kept = frame["events"].notna() & frame["n"].gt(0)
    shown = frame[kept].reset_index(drop=True)
    hidden_months = [_month(m) for m in frame.loc[~kept, "month"]]
    if (shown["events"] % 1).any() or (shown["n"] % 1).any():
        raise ValueError("events and n must be whole numbers")
    if len(shown) < MIN_POINTS:
        return Analysis(len(shown), 0, 0, None, 0, None, "p", [])
    from outcomes.measures.stats import p_chart

    limits = p_chart(shown["events"], shown["n"])
    x = [int(v) for v in shown["events"]]
    m = [int(v) for v in shown["n"]]
    big_x, big_n = sum(x), sum(m)
    # the side of p-bar = X/N, exactly: sign(x_i / m_i - X / N) = sign(x_i * N - X * m_i)
    side = [(xi * big_n > big_x * mi) - (xi * big_n < big_x * mi) for xi, mi in zip(x, m)]
    month = [_month(v) for v in shown["month"]]
    useful = [i for i, s in enumerate(side) if s]
    runs: list[list[int]] = []
    for i in useful:
        if runs and side[runs[-1][-1]] == side[i]:
            runs[-1].append(i)
        else:
            runs.append([i])
    n_useful = len(useful)
    crossings = max(len(runs) - 1, 0)
    base = dict(measure=measure, label=label, site=site)
    signals: list[Signal] = []
    method = str(limits["method"].iloc[0])
    width = "Laney p′" if method == "laney" else "3-sigma"

    for i in range(len(shown)):
        if not bool(limits["outside"].iloc[i]):
            continue
        p = float(limits["p"].iloc[i])
        above = p > float(limits["center"].iloc[i])
        bound = float(limits["ucl"].iloc[i] if above else limits["lcl"].iloc[i])
        where = "above the upper" if above else "below the lower"
        shown_p, shown_bound = _pair(p, bound)
        signals.append(
            Signal(
                rule="outside_limits",
                start_month=month[i],
                end_month=month[i],
                direction="above" if above else "below",
                detail=f"{shown_p} {where} {width} limit {shown_bound} (centre {big_x / big_n:.1%})",
                sentence=f"{when(month[i])} is {where} control limit ({shown_p} against {shown_bound})",
                months=(month[i],),
                **base,
            )
        )

    if n_useful >= MIN_POINTS:
        run_limit, cross_limit = longest_run_limit(n_useful), crossings_limit(n_useful)
        last_useful = useful[-1]
        for run in runs:
            if len(run) <= run_limit:
                continue
            first, last = month[run[0]], month[run[-1]]
            direction = "above" if side[run[0]] > 0 else "below"
            gaps = [d for d in hidden_months if first < d < last]
            on_line = [month[i] for i in range(run[0], run[-1] + 1) if side[i] == 0]
            aside = []
            if gaps:
                aside.append(f"{_plural(len(gaps), 'hidden ' + unit)} not counted")
            if on_line:
                aside.append(f"{_plural(len(on_line), unit)} on the centre line not counted")
            span = f"since {when(first)}" if run[-1] == last_useful else f"from {when(first)} to {when(last)}"
            signals.append(
                Signal(
                    rule="long_run",
                    start_month=first,
                    end_month=last,
                    direction=direction,
                    detail=f"run of {len(run)} {direction} the centre line (more than {run_limit} for {n_useful} "
                    f"useful points)",
                    sentence=f"{len(run)} {unit}s in a row {direction} the centre line {span}"
                    + (f" ({'; '.join(aside)})" if aside else ""),
                    months=tuple(month[i] for i in run),
                    **base,
                )
            )
        if crossings < cross_limit:
            first, last = month[useful[0]], month[useful[-1]]
            signals.append(
                Signal(
                    rule="few_crossings",
                    start_month=first,
                    end_month=last,
                    detail=f"{crossings} crossings of the centre line (fewer than {cross_limit} for {n_useful} "
                    f"useful points)",
                    sentence=f"Only {_plural(crossings, 'crossing')} of the centre line in {n_useful} {unit}s from "
                    f"{when(first)} to {when(last)}, where at least {cross_limit} are expected by chance",
                    months=tuple(month[i] for i in useful),
                    **base,
                )
            )
    else:
        run_limit = cross_limit = None
    longest = max((len(r) for r in runs), default=0)
    signals.sort(key=lambda s: (s.start_month, RULES.index(s.rule)))
    return Analysis(len(shown), n_useful, longest, run_limit, crossings, cross_limit, method, signals)


def detect(months, events, n, **labels) -> list[Signal]:
    """The signals of one series (see analyse)."""
    return analyse(months, events, n, **labels).signals


def series_rows(series: Series, df: pd.DataFrame) -> pd.DataFrame:
    """month, events and n of a suppressed query result, one row per month in order: `where` applied, and a row
    whose counts or rate are hidden keeps its month with missing counts (a rate can be hidden while both its
    counts are shown; the chart leaves such a point out, and so do the rules)."""
    rows = df
    for col, value in series.where.items():
        rows = rows[rows[col].isin(value if isinstance(value, (list, tuple, set)) else [value])]
    hidden = rows[series.events].isna() | rows[series.n].isna() | rows[series.rate].isna()
    out = pd.DataFrame(
        {
            "month": pd.to_datetime(rows["month"]),
            "events": pd.to_numeric(rows[series.events], errors="coerce").astype("float64").where(~hidden),
            "n": pd.to_numeric(rows[series.n], errors="coerce").astype("float64").where(~hidden),
        }
    )
    return out.sort_values("month").reset_index(drop=True)
