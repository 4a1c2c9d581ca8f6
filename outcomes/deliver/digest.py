"""The digest: each recipient's sites by e-mail on a schedule, with the KPI tiles, signals, alerts and key charts,
and the Overview and Step-down pages as a PDF. No Streamlit here.

Recipients are in `config/digests.toml` (see `config/digests.example.toml` and docs/digest.md). Every number comes
from a catalog query run through the runner with suppression and the recipient's site scope, exactly as the
screen runs it, and a view of fewer than 11 clients shows nothing. Sending and the record of what was sent are
in outcomes.mailer; alert rules in outcomes.alerts.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import hashlib
import html
import os
import re
import tomllib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from outcomes.catalog import grain, runner
from outcomes.catalog.query import Query, load_catalog
from outcomes.deliver import alerts as alerting
from outcomes.deliver import mailer
from outcomes.measures import kpis, signals
from outcomes.paths import ROOT
from outcomes.present import control_charts, flow_charts, rate_charts, theme
from outcomes.present import notice as notices
from outcomes.present import pdf as export
from outcomes.privacy import access, audit

DEFAULT_CONFIG = ROOT / "config" / "digests.toml"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PERIODS = ("week", "month")
RECIPIENT_KEYS = {"name", "email", "role", "sites", "schedule", "period"}
TOP_KEYS = {"timezone", "dashboard_url", "recipients"}
KEY_SERIES = ("stepdown_14", "followup_7")  # always drawn in the message
MAX_INLINE = 4  # charts in the message body
INLINE_SIZE = (900, 430)


class DigestConfigError(Exception):
    """The digests file is malformed or does not fit the data or the roles file; the message names the entry."""


# ---------------------------------------------------------------------------------------------------------------
# Configuration: recipients, schedules, periods
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """`weekly monday 07:00` or `monthly 1 07:00` (day 1-28), in the configured time zone."""

    kind: str  # "weekly" or "monthly"
    day: int  # weekday 0 = Monday, or day of the month
    at: dt.time
    text: str

    def latest(self, now: dt.datetime) -> dt.datetime:
        """The latest time on this schedule at or before `now` (an aware datetime, in its own zone)."""
        tz = now.tzinfo
        if self.kind == "weekly":
            day = now.date() - dt.timedelta(days=(now.weekday() - self.day) % 7)
            when = dt.datetime.combine(day, self.at, tz)
            return when if when <= now else dt.datetime.combine(day - dt.timedelta(days=7), self.at, tz)
        when = dt.datetime.combine(now.date().replace(day=self.day), self.at, tz)
        if when <= now:
            return when
        return dt.datetime.combine(kpis.add_months(now.date().replace(day=self.day), -1), self.at, tz)


def parse_schedule(text: str) -> Schedule:
    """A Schedule from its text; raises ValueError saying what is expected."""
    words = str(text).strip().lower().split()
    expected = "expected `weekly DAY HH:MM` (e.g. `weekly monday 07:00`) or `monthly D HH:MM` (D from 1 to 28)"
    if len(words) != 3 or words[0] not in ("weekly", "monthly"):
        raise ValueError(f"schedule {text!r}: {expected}")
    try:
        at = dt.time.fromisoformat(words[2])
    except ValueError:
        raise ValueError(f"schedule {text!r}: {words[2]!r} is not a time HH:MM") from None
    if words[0] == "weekly":
        if words[1] not in WEEKDAYS:
            raise ValueError(f"schedule {text!r}: {words[1]!r} is not a day of the week")
        return Schedule("weekly", WEEKDAYS.index(words[1]), at, str(text).strip())
    if not words[1].isdigit() or not 1 <= int(words[1]) <= 28:
        raise ValueError(f"schedule {text!r}: the day of the month must be from 1 to 28 (every month has it)")
    return Schedule("monthly", int(words[1]), at, str(text).strip())


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str
    role: str
    sites: tuple[str, ...] | None  # None: every site
    schedule: Schedule
    period: str  # "week" or "month"

    @property
    def scope(self) -> tuple[str, ...] | None:
        return self.sites

    def sites_text(self) -> str:
        if self.sites is None:
            return "all sites"
        return ", ".join(self.sites)


@dataclass(frozen=True)
class Config:
    recipients: tuple[Recipient, ...]
    timezone: dt.tzinfo
    notice: notices.Notice = field(default_factory=notices.Notice)  # config/notice.toml, as every export
    dashboard_url: str = ""
    source: str = "digests file"

    def by_name(self) -> dict[str, Recipient]:
        return {r.name: r for r in self.recipients}


def local_zone() -> dt.tzinfo:
    """The machine's time zone, with its daylight-saving rules where they can be read ($TZ, /etc/localtime)."""
    with contextlib.suppress(ZoneInfoNotFoundError, ValueError, OSError):
        if os.environ.get("TZ"):
            return ZoneInfo(os.environ["TZ"].lstrip(":"))
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    return dt.datetime.now().astimezone().tzinfo


def parse_digests(text: str, source: str = "digests file") -> Config:
    """The recipients in the TOML text of a digests file; raises DigestConfigError naming the entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DigestConfigError(f"{source}: not valid TOML: {exc}") from None
    if "smtp" in data:
        raise DigestConfigError(
            f"{source}: SMTP settings do not belong in the repository; put them in "
            f".streamlit/secrets.toml [smtp] or {mailer.ENV_PREFIX}* variables"
        )
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise DigestConfigError(f"{source}: unknown keys {unknown} (known: {', '.join(sorted(TOP_KEYS))})")
    try:
        tz = ZoneInfo(data["timezone"]) if data.get("timezone") else local_zone()
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise DigestConfigError(
            f'{source}: timezone {data.get("timezone")!r} is not a known time zone (e.g. "America/Chicago")'
        ) from None
    url = data.get("dashboard_url", "")
    if not isinstance(url, str) or (url and not re.match(r"https?://", url)):
        raise DigestConfigError(f"{source}: dashboard_url must be an http(s) address")
    entries = data.get("recipients", [])
    if not isinstance(entries, list) or not entries:
        raise DigestConfigError(f"{source}: no recipients (add [[recipients]] entries)")
    out, names = [], set()
    for i, entry in enumerate(entries, start=1):
        label = entry.get("name") if isinstance(entry, dict) else None
        where = f"{source}: recipient {i}" + (f" ({label!r})" if label else "")
        if not isinstance(entry, dict):
            raise DigestConfigError(f"{where}: must be a table")
        extra = sorted(set(entry) - RECIPIENT_KEYS)
        if extra:
            raise DigestConfigError(f"{where}: unknown keys {extra} (known: {', '.join(sorted(RECIPIENT_KEYS))})")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 80 or any(c in name for c in '\r\n<>"'):
            raise DigestConfigError(f'{where}: name is required: up to 80 characters, no line breaks, <, > or "')
        if name.strip().lower() in names:
            raise DigestConfigError(f"{where}: the name {name!r} is used twice")
        names.add(name.strip().lower())
        email = entry.get("email")
        if (
            not isinstance(email, str)
            or parseaddr(email)[1] != email.strip()
            or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email.strip())
        ):
            raise DigestConfigError(f"{where}: email must be one address such as director@example.org, not {email!r}")
        role = entry.get("role")
        if role not in access.ROLES:
            raise DigestConfigError(f"{where}: role must be one of {', '.join(access.ROLES)}, not {role!r}")
        sites = entry.get("sites")
        if sites == access.ALL:
            scope = None
        elif isinstance(sites, list) and sites and all(isinstance(s, str) and s.strip() for s in sites):
            scope = tuple(dict.fromkeys(s.strip() for s in sites))
        else:
            raise DigestConfigError(f'{where}: sites must be "*" or a non-empty list of site names')
        try:
            schedule = parse_schedule(entry.get("schedule", ""))
        except ValueError as exc:
            raise DigestConfigError(f"{where}: {exc}") from None
        period = entry.get("period", "week" if schedule.kind == "weekly" else "month")
        if period not in PERIODS:
            raise DigestConfigError(
                f'{where}: period must be "week" (the last full Monday-Sunday week) or '
                f'"month" (the last full calendar month), not {period!r}'
            )
        out.append(Recipient(name.strip(), email.strip(), role, scope, schedule, period))
    return Config(tuple(out), tz, notices.load(), url, source)


def load_digests(path: str | Path | None = None) -> Config:
    path = Path(path or DEFAULT_CONFIG)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DigestConfigError(
            f"no digests file at {path}: copy config/digests.example.toml there and edit it"
        ) from None
    return parse_digests(text, path.name)


def check_sites(config: Config, known: list[str]) -> None:
    """Every recipient's sites exist in the data (a misspelt site would silently show nothing)."""
    for r in config.recipients:
        missing = [s for s in r.sites or () if s not in known]
        if missing:
            raise DigestConfigError(
                f"{config.source}: recipient {r.name!r}: unknown sites {missing} (the data has {', '.join(known)})"
            )


def check_roles(config: Config, grants: dict[str, access.Grant], source: str) -> None:
    """With a roles file in use, a recipient must be granted there, with the same role, and get no site the
    grant does not give: the message shows only what the screen would show them."""
    for r in config.recipients:
        grant = grants.get(r.email.lower())
        where = f"{config.source}: recipient {r.name!r} ({r.email})"
        if grant is None:
            raise DigestConfigError(f"{where} is not in {source}, so they could not see the dashboard")
        if grant.role != r.role:
            raise DigestConfigError(f"{where}: role {r.role!r} here but {grant.role!r} in {source}")
        if grant.sites is not None and (r.sites is None or set(r.sites) - set(grant.sites)):
            raise DigestConfigError(f"{where}: {source} grants only {', '.join(grant.sites)}")


def period_before(kind: str, day: dt.date) -> kpis.Period:
    """The last full week (Monday-Sunday) or calendar month ending on or before `day`."""
    if kind == "week":
        end = day - dt.timedelta(days=(day.weekday() + 1) % 7)
        return kpis.Period(end - dt.timedelta(days=6), end)
    end = day if day == kpis.month_end(day) else day.replace(day=1) - dt.timedelta(days=1)
    return kpis.Period(end.replace(day=1), end)


def period_key(period: kpis.Period) -> str:
    """ "2025-W44" for a week, "2025-10" for a month: the state file's and the Message-ID's name for it."""
    if period.days == 7 and period.start.weekday() == 0:
        return f"{period.start:%G-W%V}"
    return f"{period.start:%Y-%m}" if period.whole_months == 1 else f"{period.start}_{period.end}"


def period_words(period: kpis.Period) -> str:
    if period.whole_months == 1:
        return f"{calendar.month_name[period.start.month]} {period.start.year}"
    return f"the week of {period.label()}"


# ---------------------------------------------------------------------------------------------------------------
# Building a digest
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Figure:
    title: str
    figure: object  # plotly Figure
    note: str = ""
    cid: str = ""


@dataclass
class Digest:
    recipient: Recipient
    period: kpis.Period
    previous: kpis.Period
    data_through: dt.date
    enough: bool  # the view holds at least 11 clients; otherwise the message holds no numbers
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    signals: list = field(default_factory=list)  # current signals
    older_signals: int = 0
    alerts: list = field(default_factory=list)  # alerting.Reading that hold
    inline: list = field(default_factory=list)  # Figure, drawn in the body
    pages: list = field(default_factory=list)  # export.Chart for the PDF

    @property
    def figures(self) -> list:
        """Every figure the message and its PDF draw (for checks)."""
        return [f.figure for f in self.inline] + [c.figure for c in self.pages]


def _note(query: Query, df: pd.DataFrame, mask: pd.DataFrame, n_col: str | None = None) -> str:
    """ "n = 1,234 eligible discharges (plus 2 hidden cells of 1–10)", from the shown rows only."""
    n_col = n_col or query.chart.get("n")
    if not n_col or n_col not in df:
        return ""
    total = int(pd.to_numeric(df[n_col], errors="coerce").sum())
    hidden = int(mask[n_col].sum()) if n_col in mask else 0
    note = f"n = {total:,} {theme.label(n_col).lower()}"
    if hidden:
        note += f" (plus {hidden} hidden {'cell' if hidden == 1 else 'cells'} of 1–10)"
    return note


def _where(df: pd.DataFrame, mask: pd.DataFrame, where: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    keep = pd.Series(True, index=df.index)
    for col, value in where.items():
        keep &= df[col].isin(value if isinstance(value, (list, tuple, set)) else [value])
    return df[keep].reset_index(drop=True), mask[keep].reset_index(drop=True)


def analysis_note(analysis: signals.Analysis) -> str:
    """The sentence under a p-chart: its signals, or why there is none."""
    if analysis.signals:
        return "\n".join(f"Signal: {s.sentence}." for s in analysis.signals)
    if not analysis.enough:
        return f"No signals: {analysis.points} months shown, fewer than the {signals.MIN_POINTS} the rules need."
    if analysis.run_limit is None:
        return f"No signals: {analysis.useful} months off the centre line, fewer than the {signals.MIN_POINTS} the run rules need."
    return (
        f"No signals: longest run {analysis.longest_run} months (a run of more than {analysis.run_limit} would be "
        f"one), {analysis.crossings} crossings of the centre line (fewer than {analysis.crossings_limit} would be)."
    )


def series_chart(con, series: signals.Series, sites, scope, catalog, site_label: str, title: str):
    """A p-chart of one signals series with its signals drawn on it, and the sentence for under it."""
    df, analysis = signals.analyse_series(con, series, sites, scope, catalog, site_label)
    rows = signals.series_rows(series, df)
    fig = control_charts.rate_p_chart(rows, "month", "events", "n", title=None)
    if fig is None:
        return None, analysis
    control_charts.mark_signals(fig, analysis.signals, rows)
    return Figure(title, fig, analysis_note(analysis)), analysis


def _run(con, catalog, name: str, params: dict, scope):
    result = runner.run(con, catalog[name], params, scope=scope)
    return result.data, result.mask


def stepdown_pages(con, catalog, scope, data_through: dt.date) -> list[export.Chart]:
    """The Step-down page's charts, from the same queries and defaults as pages/stepdown.py."""
    out = []

    def add(title, name, params, draw, where=None, n=None, footnote=None, note_rows=None):
        result = runner.run(con, catalog[name], params, scope=scope)  # grain auto: coarsened as on the page
        df, mask = result.data, result.mask
        title = title.format(grain=grain.word(result.params.get("grain")))
        footnote = "\n".join(x for x in (*result.notes, footnote) if x) or None
        if where:
            df, mask = _where(df, mask, where)
        if df.empty:
            return
        fig = draw(df)
        if fig is None:
            return
        rows_df, rows_mask = note_rows(df, mask) if note_rows else (df, mask)
        note = "\n".join(x for x in (_note(catalog[name], rows_df, rows_mask, n), footnote) if x)
        out.append(export.Chart(title, fig, note))

    add(
        "14-day step-down rate by discharge {grain}",
        "stepdown_rate",
        {"window_days": 14, "grain": "auto"},
        lambda df: control_charts.rate_p_chart(
            df, "month", "stepped_down", "eligible_discharges", rate="stepdown_rate"
        ),
    )
    add(
        "14-day step-down rate by site",
        "stepdown_by_site",
        {"window_days": 14, "grain": "auto"},
        lambda df: control_charts.p_chart_grid(
            df, "site", "period", "stepped_down", "eligible_discharges", rate="stepdown_rate"
        ),
    )
    add(
        "Days from discharge to first IOP session, by discharge reason",
        "time_to_stepdown",
        {"max_day": 30},
        lambda df: flow_charts.curves(
            df,
            "day",
            "cumulative_share",
            "at_risk",
            color="reason_group",
            marks=(7, 14, 30),
            y_label="Reached IOP",
            x_label="Days after discharge",
            hover_word=" reached IOP",
        ),
        footnote=flow_charts.CURVE_NOTE,
        note_rows=lambda df, mask: _where(df, mask, {"day": 0}),
    )
    add(
        "IOP referral funnel",
        "referral_conversion",
        {},
        lambda df: flow_charts.funnel(
            df,
            {"referred": "Referred", "admitted": "Admitted", "attended_14d": "Attended ≤14 days"},
            "site",
            {"admitted": "admitted_rate", "attended_14d": "attended_rate"},
        ),
        where={"to_level_of_care": "iop"},
    )
    since = kpis.add_months(data_through.replace(day=1), -11)
    add(
        "Referred, not arrived",
        "referral_not_arrived",
        {"start": since, "grain": "auto"},
        lambda df: rate_charts.rate_heatmap(
            df, "month", "site", "not_arrived_rate", "referred", x_label="Month of referral", height=300
        ),
        footnote=f"Showing the last 12 months (from {since:%-d %b %Y}).",
    )
    add(
        "7-day follow-up after residential or withdrawal management (FUI-aligned)",
        "fui_followup",
        {"window_days": 7, "grain": "auto"},
        lambda df: control_charts.rate_p_chart(df, "month", "followed_up", "eligible_discharges", rate="followup_rate"),
    )
    return out


def tiles(con, catalog, scope, period: kpis.Period, previous: kpis.Period) -> pd.DataFrame:
    """The Overview tiles for `period` against `previous` as the summary table (kpis.summary_rows)."""
    periods = [previous, period]
    made = []
    for kpi in kpis.KPIS:
        df, _ = _run(con, catalog, kpi.query, kpi.periods_params(periods), scope)
        made.append(kpis.tile(kpi, kpi.by_period(df, periods), periods, catalog[kpi.query].unstable_below))
    now, _ = _run(con, catalog, "census", kpis.census_params(period), scope)
    then, _ = _run(con, catalog, "census", kpis.census_params(previous, weeks=1), scope)
    return kpis.summary_rows(made + kpis.census_tiles(now, then, period, previous))


def signal_rows(found: list) -> pd.DataFrame:
    """Signals as a small table for people: measure, site, signal."""
    return pd.DataFrame(
        {
            "measure": [s.label for s in found],
            "site": [s.site or "All these sites" for s in found],
            "signal": [s.sentence for s in found],
        },
        columns=["measure", "site", "signal"],
    )


def alert_rows(readings: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "alert": [r.rule.name for r in readings],
            "site": [r.site for r in readings],
            "condition": [r.rule.what for r in readings],
            "now": [r.sentence for r in readings],
        },
        columns=["alert", "site", "condition", "now"],
    )


def build(
    con,
    recipient: Recipient,
    period: kpis.Period,
    *,
    catalog: dict[str, Query] | None = None,
    rules: list | None = None,
    readings: dict | None = None,
    draw: bool = True,
) -> Digest:
    """Everything one recipient's message shows, from suppressed results limited to their sites.

    `readings` (rule name -> alerting.Reading list, from this run's evaluation) saves evaluating the rules again.
    With `draw` False the figures are left out (for the page, which draws its own)."""
    catalog = catalog or load_catalog()
    scope = recipient.scope
    through = runner.data_through_of(con)
    previous = kpis.previous_period(period)
    digest = Digest(recipient, period, previous, through, signals.population_ok(con, catalog, None, scope))
    if not digest.enough:
        return digest
    digest.summary = tiles(con, catalog, scope, period, previous)
    found = signals.scan(con, None, scope, catalog)
    digest.signals = signals.current(found, period.start)
    digest.older_signals = len(found) - len(digest.signals)
    for rule in rules or []:
        if recipient.name not in rule.recipients:
            continue
        got = (readings or {}).get(rule.name)
        if got is None:
            got = alerting.evaluate(con, rule, catalog, through, scope)
        digest.alerts += [r for r in got if r.holds and (scope is None or r.site in scope)]
    if not draw:
        return digest
    whole = None if scope is None or len(scope) > 1 else list(scope)
    whole_label = "" if whole is None else whole[0]
    wanted = [(signals.SERIES_BY_KEY[k], whole, whole_label) for k in KEY_SERIES]
    for s in digest.signals:
        key = (signals.SERIES_BY_KEY[s.measure], [s.site] if s.site else whole, s.site)
        if all((w[0].key, w[2]) != (key[0].key, key[2]) for w in wanted):
            wanted.append(key)
    for series, sites, label in wanted[:MAX_INLINE]:
        where = label or (recipient.sites_text() if scope is not None else "all sites")
        fig, _ = series_chart(con, series, sites, scope, catalog, label, f"{series.label}, {where}: monthly p-chart")
        if fig is not None:
            fig.cid = f"chart{len(digest.inline) + 1}.{hashlib.sha256(recipient.name.encode()).hexdigest()[:8]}"
            digest.inline.append(fig)
    digest.pages = [
        export.Chart(
            f"Key measures, {period.label()} against {previous.label()}",
            flow_charts.table_figure(digest.summary),
            "Each value is the output of its catalog query for these dates and your sites; counts of 1–10 are hidden.",
        )
    ]
    table = signal_rows(digest.signals)
    if table.empty:
        table = pd.DataFrame({"signal": ["No control-chart signals reach this period."]})
    digest.pages.append(
        export.Chart(
            "Signals this period",
            flow_charts.table_figure(table),
            "Signals: a point outside the 3-sigma (or Laney p′) limits, a run longer than "
            "round(log2(n) + 3) or fewer crossings than expected (Anhøj & Olesen 2014).",
        )
    )
    if digest.alerts:
        digest.pages.append(export.Chart("Alerts", flow_charts.table_figure(alert_rows(digest.alerts))))
    digest.pages += stepdown_pages(con, catalog, scope, through)
    return digest


# ---------------------------------------------------------------------------------------------------------------
# The message
# ---------------------------------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return hashlib.sha256(text.strip().lower().encode("utf-8")).hexdigest()[:16]


def message_id(kind: str, parts: list[str], sender: str) -> str:
    """A Message-ID fixed by what the message is for, so the same digest sent twice carries the same one."""
    domain = parseaddr(sender)[1].rsplit("@", 1)[-1] or "localhost"
    return f"<{kind}.{'.'.join(re.sub(r'[^A-Za-z0-9-]', '-', p) for p in parts)}@{domain}>"


def _table_html(df: pd.DataFrame) -> str:
    head = "".join(
        f'<th style="text-align:left;padding:4px 10px;border-bottom:1px solid #999">{html.escape(str(c))}</th>'
        for c in df.columns
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td style="padding:4px 10px;border-bottom:1px solid #eee">{html.escape(str(v))}</td>' for v in row)
        + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f'<table style="border-collapse:collapse;font-size:14px">{head and f"<tr>{head}</tr>"}{body}</table>'


def _table_text(df: pd.DataFrame) -> str:
    return df.to_string(index=False) if len(df) else "(none)"


def _notice_html(notice: str) -> str:
    return (
        f'<p style="font-size:12px;color:#333;border:1px solid #bbb;padding:8px;background:#f7f7f7">'
        f"{html.escape(notice)}</p>"
    )


def compose(
    digest: Digest,
    config: Config,
    sender: str,
    now: dt.datetime,
    pngs: dict[str, bytes] | None = None,
    pdf: bytes | None = None,
) -> EmailMessage:
    """The e-mail: plain text and HTML alternatives, the charts inline (cid:), the PDF attached."""
    r, period = digest.recipient, digest.period
    where = r.sites_text()
    subject = f"Treatment outcomes: {where}, {period_words(period)}"
    words = period_words(period)
    intro = (
        f"{words[:1].upper() + words[1:]} ({period.label()}) against {digest.previous.label()}, for "
        f"{where}. Data through {digest.data_through:%-d %b %Y}. Counts of 1–10 are hidden, as on screen."
    )
    text = [config.notice.part2, "", subject, "", intro, ""]
    parts = [
        _notice_html(config.notice.part2),
        f'<h2 style="font-family:Arial,sans-serif">{html.escape(subject)}</h2>',
        f"<p>{html.escape(intro)}</p>",
    ]
    if not digest.enough:
        line = (
            "Too few clients to show: your sites hold fewer than 11 clients, so this message holds no results "
            "(the dashboard would show none either)."
        )
        text.append(line)
        parts.append(f"<p>{html.escape(line)}</p>")
    else:
        text += ["KEY MEASURES", _table_text(digest.summary), ""]
        parts += ["<h3>Key measures</h3>", _table_html(digest.summary)]
        rows = signal_rows(digest.signals)
        text.append("SIGNALS THIS PERIOD")
        parts.append("<h3>Signals this period</h3>")
        if rows.empty:
            text.append("No control-chart signals reach this period.")
            parts.append("<p>No control-chart signals reach this period.</p>")
        else:
            text += [f"- {m}, {s}: {g}." for m, s, g in rows.itertuples(index=False)]
            parts.append(
                "<ul>"
                + "".join(
                    f"<li><b>{html.escape(m)}, {html.escape(s)}:</b> {html.escape(g)}.</li>"
                    for m, s, g in rows.itertuples(index=False)
                )
                + "</ul>"
            )
        if digest.older_signals:
            older = (
                f"{digest.older_signals} earlier {'signal ends' if digest.older_signals == 1 else 'signals end'} "
                "before this period (see the charts on the dashboard)."
            )
            text.append(older)
            parts.append(f"<p>{html.escape(older)}</p>")
        text.append("")
        text.append("ALERTS")
        parts.append("<h3>Alerts</h3>")
        if digest.alerts:
            for a in digest.alerts:
                text.append(f"- {a.rule.what} at {a.site}: {a.sentence}.")
            parts.append(
                "<ul>"
                + "".join(
                    f"<li><b>{html.escape(a.rule.what)} at {html.escape(a.site)}:</b> {html.escape(a.sentence)}.</li>"
                    for a in digest.alerts
                )
                + "</ul>"
            )
        else:
            text.append("No alert holds for your sites.")
            parts.append("<p>No alert holds for your sites.</p>")
        text.append("")
        if digest.inline:
            text.append("CHARTS (in the HTML version of this message)")
            parts.append("<h3>Charts</h3>")
            for f in digest.inline:
                text += [f"- {f.title}: {f.note}"]
                parts.append(
                    f'<h4>{html.escape(f.title)}</h4><img src="cid:{f.cid}" width="720" '
                    f'alt="{html.escape(f.title)}" style="max-width:100%">'
                    + "".join(f'<p style="font-size:13px">{html.escape(line)}</p>' for line in f.note.split("\n"))
                )
            text.append("")
        if pdf:
            line = (
                "Attached: the Overview and Step-down pages for your sites as a PDF (a chart whose every value "
                "is hidden is left out, as on screen)."
            )
            text.append(line)
            parts.append(f"<p>{html.escape(line)}</p>")
    footer = f"You get this {r.schedule.text} as {r.role} for {where}." + (
        f" Dashboard: {config.dashboard_url}" if config.dashboard_url else ""
    )
    text += ["", footer]
    parts.append(f'<p style="font-size:12px;color:#666">{html.escape(footer)}</p>')

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = formataddr((r.name, r.email))
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id("digest", [period_key(period), _slug(r.name)], sender)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(text))
    msg.add_alternative(
        f'<html><body style="font-family:Arial,sans-serif">{"".join(parts)}</body></html>', subtype="html"
    )
    body = msg.get_payload()[1]
    for f in digest.inline:
        if pngs and f.cid in pngs:
            body.add_related(pngs[f.cid], "image", "png", cid=f"<{f.cid}>", filename=f"{f.cid.split('.')[0]}.png")
    if pdf:
        msg.add_attachment(pdf, "application", "pdf", filename=f"outcomes-{period_key(period)}.pdf")
    return msg


def render(digest: Digest, config: Config, sender: str, now: dt.datetime) -> EmailMessage:
    """Draw the charts (PNG) and the PDF, and compose the message."""
    pngs = {f.cid: export.png(f.figure, *INLINE_SIZE) for f in digest.inline}
    pdf = None
    if digest.enough and digest.pages:
        pdf = export.pdf(
            f"Overview and Step-down, {digest.recipient.sites_text()}",
            digest.pages,
            f"Sites: {digest.recipient.sites_text()}; {digest.period.label()}",
            digest.data_through,
            made=now.replace(tzinfo=None),
            notice=config.notice,
        )
    return compose(digest, config, sender, now, pngs, pdf)


def alert_message(
    reading, recipient: Recipient, config: Config, sender: str, now: dt.datetime, since: str, through: dt.date
) -> EmailMessage:
    """An alert: what crossed, where and when, with the measure's p-chart."""
    rule = reading.rule
    subject = f"Alert: {rule.what} at {reading.site}"
    lines = [
        f"{rule.what} at {reading.site}: {reading.sentence}.",
        f"Data through {through:%-d %b %Y}. You will not hear about this again until it clears.",
    ]
    png = None
    note = ""
    if reading.rows is not None:
        fig = control_charts.rate_p_chart(
            reading.rows,
            "month",
            "events",
            "n",
            benchmark=(rule.threshold, f"alert {rule.condition} {rule.threshold:.0%}")
            if rule.threshold is not None
            else None,
        )
        if fig is not None:
            control_charts.mark_signals(fig, reading.analysis.signals if reading.analysis else [], reading.rows)
            png = export.png(fig, *INLINE_SIZE)
            note = analysis_note(reading.analysis) if reading.analysis else ""
    cid = f"alert.{_slug(rule.name + reading.site)[:8]}"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = formataddr((recipient.name, recipient.email))
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(
        "alert", [_slug(rule.name), _slug(reading.site), re.sub(r"\D", "", since), _slug(recipient.name)], sender
    )
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n\n".join([config.notice.part2, subject, *lines, note]).strip() + "\n")
    img = f'<img src="cid:{cid}" width="720" alt="{html.escape(subject)}" style="max-width:100%">' if png else ""
    msg.add_alternative(
        '<html><body style="font-family:Arial,sans-serif">'
        + _notice_html(config.notice.part2)
        + f"<h2>{html.escape(subject)}</h2>"
        + "".join(f"<p>{html.escape(x)}</p>" for x in lines)
        + img
        + "".join(f'<p style="font-size:13px">{html.escape(x)}</p>' for x in note.split("\n") if x)
        + "</body></html>",
        subtype="html",
    )
    if png:
        msg.get_payload()[1].add_related(png, "image", "png", cid=f"<{cid}>", filename="chart.png")
    return msg


# ---------------------------------------------------------------------------------------------------------------
# Running: what is due, sending, recording
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Report:
    lines: list = field(default_factory=list)
    failed: int = 0
    sent: int = 0

    def say(self, text: str) -> None:
        self.lines.append(text)

    def fail(self, text: str) -> None:
        self.failed += 1
        self.lines.append("FAILED: " + text)


class Outbox:
    """Where messages go: SMTP (recorded in the state and the audit log) or, for a dry run, .eml files."""

    def __init__(self, settings: mailer.Settings | None, dry_run: Path | None, audit_path=None):
        self.settings, self.dry_run, self.audit_path = settings, dry_run, audit_path
        self.sender = settings.sender if settings else mailer.DEFAULT_SENDER

    def deliver(self, msg: EmailMessage, kind: str, recipient: Recipient, **details) -> str:
        """Send (or write) one message; returns its SHA-256. Raises mailer.SendError / SendUncertain."""
        data = mailer.wire_bytes(msg)
        digest = hashlib.sha256(data).hexdigest()
        if self.dry_run:
            self.dry_run.mkdir(parents=True, exist_ok=True)
            parts = [kind, recipient.name, details.get("alert", ""), details.get("site", ""), details.get("period", "")]
            name = re.sub(r"[^A-Za-z0-9.-]+", "-", "-".join(str(p) for p in parts if p)).strip("-")
            (self.dry_run / f"{name}.eml").write_bytes(data)
        else:
            if self.settings is None:
                raise mailer.SendError(
                    "no SMTP settings: set [smtp] in .streamlit/secrets.toml or "
                    f"{mailer.ENV_PREFIX}HOST (or use --dry-run DIR)"
                )
            mailer.send(msg, self.settings, data)
        audit.write(
            "email_sent",
            "digest",
            self.audit_path,
            message=kind,
            delivery="file" if self.dry_run else "smtp",
            recipient=recipient.email,
            recipient_name=recipient.name,
            role=recipient.role,
            scope=list(recipient.sites) if recipient.sites is not None else access.ALL,
            message_id=msg["Message-ID"],
            sha256=digest,
            bytes=len(data),
            **details,
        )
        return digest


def _send_recorded(
    outbox: Outbox,
    msg: EmailMessage,
    kind: str,
    recipient: Recipient,
    now: dt.datetime,
    report: Report,
    record,
    what: str,
    **details,
) -> bool:
    """Record `sending`, send, then record `sent` or `failed` (`record(**entry)` writes the state; None for a dry
    run, which records nothing). True when it went out."""
    if record:
        record(status="sending", message_id=msg["Message-ID"], time=mailer.now_iso(now))
    try:
        sha = outbox.deliver(msg, kind, recipient, **details)
    except mailer.SendError as exc:
        if record:
            record(status="failed", error=str(exc)[:500], time=mailer.now_iso(now))
        report.fail(f"{what}: {exc}; it will be tried again on the next run")
        return False
    except mailer.SendUncertain as exc:
        report.fail(
            f"{what}: {exc}. Not sent again by itself: check the mail log for {msg['Message-ID']}, "
            f'then send it by hand with `python -m outcomes digest --recipient "{recipient.name}"` if '
            "it did not arrive"
        )
        return False
    if record:
        record(status="sent", sha256=sha, time=mailer.now_iso(now), error=None)
    report.sent += 1
    report.say(f"{'wrote' if outbox.dry_run else 'sent'} {what} to {recipient.email} ({msg['Message-ID']})")
    return True


def run_alerts(
    con, rules, config: Config, catalog, state: mailer.State, outbox: Outbox, now: dt.datetime, report: Report
) -> dict:
    """Evaluate every rule; send each newly holding alert once to each of its recipients, and not again until it
    has cleared. Returns the readings by rule name. A dry run reads the state but records nothing."""
    through = runner.data_through_of(con)
    people = config.by_name()
    live = not outbox.dry_run
    readings = {}
    for rule in rules:
        readings[rule.name] = got = alerting.evaluate(con, rule, catalog, through)
        for reading in got:
            where = f"alert {rule.name!r} at {reading.site}"
            entry = dict(state.alert(rule.name, reading.site))
            if reading.holds is None:  # hidden or too few clients: neither fires nor clears
                continue
            if not reading.holds:
                if entry.get("active") and live:
                    state.set_alert(
                        rule.name,
                        reading.site,
                        {"active": False, "cleared": mailer.now_iso(now), "since": entry.get("since")},
                    )
                    report.say(f"{where} cleared ({reading.sentence})")
                continue
            if not entry.get("active"):
                entry = {
                    "active": True,
                    "since": mailer.now_iso(now),
                    "month": str(reading.month),
                    "value": reading.value,
                    "deliveries": {},
                }
                if live:
                    state.set_alert(rule.name, reading.site, entry)
            deliveries = entry.setdefault("deliveries", {})
            for name in rule.recipients:
                done = deliveries.get(name, {})
                if done.get("status") == "sent":
                    continue
                if done.get("status") == "sending":
                    report.fail(
                        f"{where} to {name}: an earlier run stopped while sending "
                        f"{done.get('message_id')}; not sent again by itself"
                    )
                    continue
                person = people[name]
                try:
                    msg = alert_message(reading, person, config, outbox.sender, now, entry["since"], through)
                except Exception as exc:
                    report.fail(
                        f"{where} to {name}: the message could not be built ({type(exc).__name__}: {exc}); "
                        "it will be tried again on the next run"
                    )
                    continue

                def record(_name=name, _site=reading.site, **values):
                    deliveries[_name] = deliveries.get(_name, {}) | values
                    state.set_alert(rule.name, _site, entry)

                _send_recorded(
                    outbox,
                    msg,
                    "alert",
                    person,
                    now,
                    report,
                    record if live else None,
                    where,
                    period=str(reading.month),
                    alert=rule.name,
                    site=reading.site,
                )
    return readings


def run(
    con,
    config: Config,
    *,
    mode: str,
    names: list[str] | None = None,
    rules: list | None = None,
    state_file: Path | None = None,
    outbox: Outbox,
    now: dt.datetime | None = None,
    catalog: dict[str, Query] | None = None,
) -> Report:
    """Build and send digests. mode "due": what each schedule makes due and is not yet sent (recorded in the
    state file), and the alerts; "all" or "recipient" (`names`): those recipients now, for the last full period
    the data covers (recorded too, so a scheduled run does not send it again; not for a dry run)."""
    catalog = catalog or load_catalog()
    now = (now or dt.datetime.now(dt.UTC)).astimezone(config.timezone)
    report = Report()
    through = runner.data_through_of(con)
    known = signals.sites_of(con)
    check_sites(config, known)
    alerting.check_sites(rules or [], known)
    chosen = list(config.recipients)
    if mode == "recipient":
        wanted = {n.strip().lower() for n in names or []}
        chosen = [r for r in chosen if r.name.lower() in wanted]
        missing = wanted - {r.name.lower() for r in chosen}
        if missing:
            raise DigestConfigError(f"{config.source}: no recipient named {', '.join(sorted(missing))}")
    path = state_file or mailer.state_path()
    live = not outbox.dry_run
    with mailer.locked(path):
        state = mailer.State.load(path)
        readings = (
            run_alerts(con, rules, config, catalog, state, outbox, now, report) if mode == "due" and rules else {}
        )
        for r in chosen:
            if mode == "due":
                occasion = r.schedule.latest(now)
                period = period_before(r.period, occasion.date() - dt.timedelta(days=1))
            else:
                period = period_before(r.period, min(through, now.date() - dt.timedelta(days=1)))
            key = period_key(period)
            what = f"digest for {r.name!r}, {period.label()}"
            entry = state.digest(r.name, key)
            if mode == "due":
                if entry.get("status") == "sent":
                    continue
                if entry.get("status") == "sending":
                    report.fail(
                        f"{what}: an earlier run stopped while sending {entry.get('message_id')}; not sent "
                        f'again by itself (check the mail log, then `digest --recipient "{r.name}"`)'
                    )
                    continue
                if through < period.end:
                    report.say(f"{what}: waiting for data through {period.end:%-d %b %Y} (have {through:%-d %b %Y})")
                    continue
            try:
                digest = build(con, r, period, catalog=catalog, rules=rules, readings=readings)
                msg = render(digest, config, outbox.sender, now)
            except Exception as exc:  # one recipient's failure (say, the chart browser) must not stop the others
                report.fail(
                    f"{what}: the message could not be built ({type(exc).__name__}: {exc}); nothing was "
                    "sent and it will be tried again on the next run"
                )
                continue

            def record(_name=r.name, _key=key, **values):
                state.set_digest(_name, _key, **values)

            _send_recorded(
                outbox,
                msg,
                "digest",
                r,
                now,
                report,
                record if live else None,
                what,
                period=key,
                period_start=period.start,
                period_end=period.end,
            )
    return report


# ---------------------------------------------------------------------------------------------------------------
# For the Overview page
# ---------------------------------------------------------------------------------------------------------------


def overview_rows(
    con, scope, period: kpis.Period, rules: list | None = None, catalog: dict[str, Query] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Overview's "Signals this period" (measure, site, signal) and "Alerts" (alert, site, condition, now)
    rows for a user's sites (`scope` None: every site), from suppressed results; empty when the view holds
    fewer than 11 clients."""
    catalog = catalog or load_catalog()
    if not signals.population_ok(con, catalog, None, scope):
        return signal_rows([]), alert_rows([])
    found = signals.current(signals.scan(con, None, scope, catalog), period.start)
    through = runner.data_through_of(con)
    holding = [r for rule in rules or [] for r in alerting.evaluate(con, rule, catalog, through, scope) if r.holds]
    return signal_rows(found), alert_rows(holding)
