"""Who gets a digest and when: the recipients in `config/digests.toml` (see `config/digests.example.toml` and
docs/digest.md), their schedules, and the periods a digest covers."""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from outcomes.deliver import mailer
from outcomes.measures import kpis
from outcomes.paths import ROOT
from outcomes.present import notice as notices
from outcomes.privacy import access

DEFAULT_CONFIG = ROOT / "config" / "digests.toml"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PERIODS = ("week", "month")
RECIPIENT_KEYS = {"name", "email", "role", "sites", "schedule", "period"}
TOP_KEYS = {"timezone", "dashboard_url", "recipients"}


class DigestConfigError(Exception):
    """The digests file is malformed or does not fit the data or the roles file; the message names the entry."""


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
