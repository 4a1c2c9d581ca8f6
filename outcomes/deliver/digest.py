"""Running the digest: what is due by each recipient's schedule, sending (or writing `.eml` files), and the
record of what was sent, so a run every few minutes sends each digest once per period. No Streamlit here.

The parts: outcomes.deliver.schedule (recipients, schedules, periods), outcomes.deliver.contents (what a digest
holds), outcomes.deliver.compose (the e-mails), outcomes.present.report (tables and charts shared with the
page PDF), outcomes.deliver.mailer (SMTP and the state file), outcomes.deliver.alerts (alert rules). Their
names used by callers are importable from here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from outcomes.catalog import runner
from outcomes.catalog.query import Query, load_catalog
from outcomes.deliver import alerts as alerting
from outcomes.deliver import mailer
from outcomes.deliver.compose import _slug, alert_message, compose, message_id, render
from outcomes.deliver.contents import Digest, build, overview_rows
from outcomes.deliver.schedule import (
    Config,
    DigestConfigError,
    Recipient,
    Schedule,
    check_roles,
    check_sites,
    load_digests,
    parse_digests,
    parse_schedule,
    period_before,
    period_key,
)
from outcomes.measures import signal_scan
from outcomes.present import report as rendering
from outcomes.privacy import access, audit

__all__ = [
    "Config",
    "Digest",
    "DigestConfigError",
    "Outbox",
    "Recipient",
    "Report",
    "Schedule",
    "_slug",
    "alert_message",
    "build",
    "check_roles",
    "check_sites",
    "compose",
    "load_digests",
    "message_id",
    "overview_rows",
    "parse_digests",
    "parse_schedule",
    "period_before",
    "period_key",
    "render",
    "run",
    "run_alerts",
]


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
                    events = rendering.events_in_view(con, catalog, person.scope, [reading.site])
                    msg = alert_message(reading, person, config, outbox.sender, now, entry["since"], through, events)
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
    known = signal_scan.sites_of(con)
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
