"""The e-mails: a digest (plain text and HTML, charts inline, the PDF attached) and an alert, each with the
42 CFR part 2 notice and a Message-ID fixed by what it is for."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

import pandas as pd

from outcomes.deliver.contents import Digest
from outcomes.deliver.schedule import Config, Recipient, period_key, period_words
from outcomes.present import annotation_marks, control_charts, under_chart
from outcomes.present import pdf as export
from outcomes.present.report import analysis_note, signal_rows

INLINE_SIZE = (900, 430)


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
        text.append("PROGRAM EVENTS THIS PERIOD")
        parts.append("<h3>Program events this period</h3>")
        if digest.events:
            text += [f"- {e[len('Event: ') :]}" for e in digest.events]
            parts.append(
                "<ul>" + "".join(f"<li>{html.escape(e[len('Event: ') :])}</li>" for e in digest.events) + "</ul>"
            )
        else:
            text.append("No program events recorded for this period.")
            parts.append("<p>No program events recorded for this period.</p>")
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
    reading,
    recipient: Recipient,
    config: Config,
    sender: str,
    now: dt.datetime,
    since: str,
    through: dt.date,
    events=None,
) -> EmailMessage:
    """An alert: what crossed, where and when, with the measure's p-chart and the site's program events
    (`events`, from report.events_in_view)."""
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
            annotation_marks.draw(fig, events)
            png = export.png(fig, *INLINE_SIZE)
            note = "\n".join(
                [analysis_note(reading.analysis) if reading.analysis else "", *under_chart.lines(fig, "events")]
            ).strip()
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
