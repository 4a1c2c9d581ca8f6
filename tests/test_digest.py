"""The digest and alerts end to end: a real SMTP server on loopback (aiosmtpd, STARTTLS with a certificate made
here, AUTH LOGIN and PLAIN) receives what `python -m outcomes digest` sends from the demo database.

The demo's data run through Fri 31 Oct 2025. "Now" is Mon 27 Oct 2025 07:05 in Chicago for the digests: the
weekly director's period is then Mon 20 - Sun 26 Oct 2025 and the monthly one's September 2025.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import hashlib
import io
import ipaddress
import json
import logging
import os
import socket
import ssl
import stat
from pathlib import Path

import pytest

from outcomes import cli
from outcomes.catalog import runner
from outcomes.deliver import alerts as alerting
from outcomes.deliver import digest, mailer
from outcomes.measures import kpis, signal_scan
from outcomes.present import notice as notices
from outcomes.privacy import audit

OTHER_SITES = {"Northside director": ("Riverside", "Eastgate"), "Regional director": ("Eastgate",)}
NOW = "2025-10-27T07:05"

DIGESTS = """
timezone = "America/Chicago"

[[recipients]]
name = "Northside director"
email = "director.north@example.org"
role = "director"
sites = ["Northside"]
schedule = "weekly monday 07:00"

[[recipients]]
name = "Regional director"
email = "director.regional@example.org"
role = "director"
sites = ["Northside", "Riverside"]
schedule = "monthly 1 07:00"
"""

NORTH_ONLY = DIGESTS.split('[[recipients]]\nname = "Regional')[0]


@pytest.fixture(scope="module", autouse=True)
def chart_browser():
    """Stop the chart renderer after this module, so its browser does not outlive the test process."""
    yield
    from outcomes.present import pdf as export

    export.stop()


# --------------------------------------------------------------------------------------------------------------
# A real SMTP server with STARTTLS and AUTH
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """What the server received: envelopes (sender, recipients, the exact bytes) and the AUTH mechanisms used."""

    def __init__(self, port: int):
        self.port = port
        self.envelopes = []
        self.mechanisms = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [email.message_from_bytes(e.original_content, policy=email.policy.default) for e in self.envelopes]


@contextlib.contextmanager
def smtp_server(tls_files, password: str = "s3cret", exclude: tuple = (), port: int | None = None):
    """aiosmtpd on 127.0.0.1: STARTTLS required before anything, then AUTH (user `digest`) before MAIL."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd warns about its own deprecated attribute
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox(port or free_port())

    def authenticate(server, session, envelope, mechanism, auth_data):
        box.mechanisms.append(mechanism)
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            b"digest",
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticate,
        auth_exclude_mechanism=list(exclude),
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def smtp_env(mp, port: int, tls_files, tmp: Path, password: str = "s3cret") -> None:
    """SMTP settings as environment variables; no secrets or roles file from the checkout is read."""
    for key, value in {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "USERNAME": "digest",
        "PASSWORD": password,
        "FROM": "Treatment outcomes <outcomes@example.org>",
        "CAFILE": str(tls_files[0]),
        "STARTTLS": "true",
        "TIMEOUT": "20",
    }.items():
        mp.setenv(mailer.ENV_PREFIX + key, value)
    mp.setenv(mailer.SECRETS_ENV, str(tmp / "no-secrets.toml"))
    mp.setenv("OUTCOMES_ROLES", str(tmp / "no-roles.toml"))


def run_digest(db_path, folder: Path, *extra: str, now: str = NOW) -> int:
    return cli.main(
        [
            "digest",
            *extra,
            "--db",
            str(db_path),
            "--config",
            str(folder / "digests.toml"),
            "--alerts",
            str(folder / "alerts.toml"),
            "--state",
            str(folder / "state.json"),
            "--now",
            now,
        ]
    )


def text_of(msg) -> str:
    """Every text a person or a program could read from a message: headers, decoded parts, PDF text and metadata."""
    from pypdf import PdfReader

    out = [str(msg)]
    for part in msg.walk():
        if part.is_multipart():
            continue
        data = part.get_payload(decode=True) or b""
        if part.get_content_type() == "application/pdf":
            pdf = PdfReader(io.BytesIO(data))
            out += [str(v) for v in (pdf.metadata or {}).values()] + [p.extract_text() or "" for p in pdf.pages]
        elif part.get_content_maintype() == "text":
            out.append(part.get_content())
        out.append(data.decode("latin-1"))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------------------
# One scheduled run that sends two digests, shared by the checks on what arrived
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def delivered(demo_db_path, tls_files, tmp_path_factory):
    folder = tmp_path_factory.mktemp("digest")
    (folder / "digests.toml").write_text(DIGESTS)
    with pytest.MonkeyPatch.context() as mp, smtp_server(tls_files) as box:
        smtp_env(mp, box.port, tls_files, folder)
        first = run_digest(demo_db_path, folder, "--due")
        received = list(box.envelopes)
        second = run_digest(demo_db_path, folder, "--due")
        yield {
            "folder": folder,
            "box": box,
            "first": first,
            "second": second,
            "received": received,
            "messages": {m["To"].addresses[0].display_name: m for m in box.messages()},
        }


def test_due_sends_each_digest_once(delivered, capsys):
    assert delivered["first"] == 0 and delivered["second"] == 0
    assert len(delivered["received"]) == 2
    assert len(delivered["box"].envelopes) == 2  # the second run sent nothing
    assert sorted(e.rcpt_tos[0] for e in delivered["received"]) == [
        "director.north@example.org",
        "director.regional@example.org",
    ]
    assert {e.mail_from for e in delivered["received"]} == {"outcomes@example.org"}
    assert set(delivered["box"].mechanisms) == {"PLAIN"}  # smtplib's first choice, after STARTTLS
    state = json.loads((delivered["folder"] / "state.json").read_text())
    assert state["digests"]["Northside director"]["2025-W43"]["status"] == "sent"
    assert state["digests"]["Regional director"]["2025-09"]["status"] == "sent"
    assert stat.S_IMODE(os.stat(delivered["folder"] / "state.json").st_mode) == 0o600


def test_each_message_sent_is_an_audit_event(delivered, audit_log):
    events = {e["message_id"]: e for e in audit.read(audit_log) if e["event"] == "email_sent"}
    for envelope in delivered["received"]:
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        event = events[msg["Message-ID"]]
        assert event["sha256"] == hashlib.sha256(envelope.original_content).hexdigest()
        assert event["recipient"] == envelope.rcpt_tos[0] and event["delivery"] == "smtp"
        assert event["message"] == "digest" and event["period"] in ("2025-W43", "2025-09")
    north = next(e for e in events.values() if e["recipient"] == "director.north@example.org")
    assert (north["scope"], north["period_start"], north["period_end"]) == (["Northside"], "2025-10-20", "2025-10-26")


def test_message_has_text_html_inline_charts_and_a_pdf(delivered):
    msg = delivered["messages"]["Northside director"]
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.iter_parts()
    assert (plain.get_content_type(), related.get_content_type()) == ("text/plain", "multipart/related")
    html_part, *images = related.iter_parts()
    assert images and all(i.get_content_type() == "image/png" for i in images)
    assert all(i.get_payload(decode=True).startswith(b"\x89PNG") for i in images)
    cids = {i["Content-ID"].strip("<>") for i in images}
    assert cids == set(__import__("re").findall(r'src="cid:([^"]+)"', html_part.get_content()))
    assert attachment.get_content_type() == "application/pdf"
    assert msg["Message-ID"] == digest.message_id(
        "digest", ["2025-W43", digest._slug("Northside director")], "outcomes@example.org"
    )
    assert msg["Subject"] == "Treatment outcomes: Northside, the week of 20 Oct – 26 Oct 2025"


def test_attachment_opens_as_a_pdf_with_the_notice(delivered):
    from pypdf import PdfReader

    for msg in delivered["messages"].values():
        part = next(p for p in msg.walk() if p.get_content_type() == "application/pdf")
        data = part.get_payload(decode=True)
        assert data.startswith(b"%PDF")
        pdf = PdfReader(io.BytesIO(data))
        assert len(pdf.pages) >= 4  # key measures, signals and the Step-down charts not wholly hidden
        assert all(page.images for page in pdf.pages)
        text = "".join(page.extract_text() for page in pdf.pages)
        assert " ".join(notices.PART2.split()[:12]) in " ".join(text.split()) and "42 CFR part 2" in text


def test_notice_is_in_the_body(delivered):
    msg = delivered["messages"]["Regional director"]
    assert notices.PART2 in msg.get_body(("plain",)).get_content()
    assert notices.PART2.replace("'", "&#x27;") in msg.get_body(("html",)).get_content()


@pytest.mark.parametrize("who", sorted(OTHER_SITES))
def test_no_other_site_is_named_anywhere(delivered, who):
    text = text_of(delivered["messages"][who]).lower()
    for site in OTHER_SITES[who]:
        assert site.lower() not in text, f"{who}'s message names {site}"


def test_no_other_site_in_any_figure(demo_db, catalog):
    # the PDF pages and inline charts are pictures: their figures are what could carry a name
    config = digest.parse_digests(DIGESTS)
    north = config.by_name()["Northside director"]
    built = digest.build(demo_db, north, kpis.Period(dt.date(2025, 10, 20), dt.date(2025, 10, 26)), catalog=catalog)
    assert built.enough and built.figures
    for fig in built.figures:
        spec = fig.to_json()
        assert "Riverside" not in spec and "Eastgate" not in spec
    assert "Northside" in "".join(f.to_json() for f in built.figures)  # the per-site grid names its one site


def test_small_counts_do_not_appear(delivered, demo_db, catalog):
    # For the Northside week, run each tile's query raw: wherever its counts hold a 1-10, neither the raw value
    # nor the raw n may be in the message; the tile shows a dash and says the count is hidden.
    msg = delivered["messages"]["Northside director"]
    text = text_of(msg)
    period, previous = (
        kpis.Period(dt.date(2025, 10, 20), dt.date(2025, 10, 26)),
        kpis.Period(dt.date(2025, 10, 13), dt.date(2025, 10, 19)),
    )
    checked = 0
    for kpi in kpis.KPIS:
        raw = runner.run(
            demo_db, catalog[kpi.query], kpi.periods_params([previous, period]), raw=True, scope=("Northside",)
        ).data
        row = kpi.by_period(raw, [previous, period])[-1]
        if row.empty:
            continue
        counts = [c for c in catalog[kpi.query].suppress.get("counts", []) if c in row]
        small = [c for c in counts if 1 <= (row[c].iloc[0] or 0) <= 10]
        if not small:
            continue
        checked += 1
        value = kpis.format_value(kpi.kind, row[kpi.value].iloc[0])
        if value != "—":  # e.g. fui7: 1 of 2 discharges, 50.0%
            assert value not in text, f"{kpi.label}: the raw value {value} is in the message"
        assert f"n = {int(row[kpi.n].iloc[0])} " not in text
        line = next(
            ln for ln in msg.get_body(("plain",)).get_content().splitlines() if ln.strip().startswith(kpi.label)
        )
        assert "—" in line
    assert checked >= 1, "the demo week should hold small counts for Northside"


def test_the_notice_is_configurable(tmp_path, monkeypatch):
    """The e-mail takes its notice from config/notice.toml, like every other export."""
    import plotly.graph_objects as go
    from pypdf import PdfReader

    from outcomes.present import pdf as export

    own = "This record is protected by 42 CFR part 2: our privacy officer's own wording."
    (tmp_path / "notice.toml").write_text(f'[notice]\npart2 = "{own}"\n')
    monkeypatch.setenv("OUTCOMES_NOTICE", str(tmp_path / "notice.toml"))
    config = digest.parse_digests(NORTH_ONLY)
    assert config.notice.part2 == own
    north = config.by_name()["Northside director"]
    empty = digest.Digest(
        north,
        kpis.Period(dt.date(2025, 10, 20), dt.date(2025, 10, 26)),
        kpis.Period(dt.date(2025, 10, 13), dt.date(2025, 10, 19)),
        dt.date(2025, 10, 31),
        False,
    )
    msg = digest.compose(empty, config, "o@example.org", dt.datetime(2025, 10, 27, tzinfo=dt.UTC))
    assert msg.get_body(("plain",)).get_content().startswith(own)
    assert notices.PART2 not in msg.get_body(("plain",)).get_content()
    data = export.pdf(
        "Overview",
        [export.Chart("c", go.Figure(go.Scatter(x=[1, 2], y=[0.2, 0.4])))],
        "Sites: Northside",
        dt.date(2025, 10, 31),
        notice=config.notice,
    )
    text = " ".join("".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())
    assert own in text


def test_a_recipient_with_too_few_clients_gets_no_numbers(demo_db, catalog):
    # a view of fewer than 11 clients shows nothing on screen; the message says so and draws nothing (a site
    # with no clients at all stands in for a small one: the guard is the same population query)
    recipient = digest.Recipient(
        "Tiny", "tiny@example.org", "director", ("Nowhere",), digest.parse_schedule("weekly monday 07:00"), "week"
    )
    built = digest.build(demo_db, recipient, kpis.Period(dt.date(2025, 10, 20), dt.date(2025, 10, 26)), catalog=catalog)
    assert not built.enough and built.summary.empty and not built.figures and not built.signals
    msg = digest.render(
        built,
        digest.parse_digests(DIGESTS),
        "Outcomes <o@example.org>",
        dt.datetime(2025, 10, 27, 7, 5, tzinfo=dt.UTC),
    )
    body = msg.get_body(("plain",)).get_content()
    assert "Too few clients to show" in body and "KEY MEASURES" not in body
    assert not [p for p in msg.walk() if p.get_content_maintype() in ("image", "application")]


# --------------------------------------------------------------------------------------------------------------
# Failures: reported, retried on the next run, never sent twice
# --------------------------------------------------------------------------------------------------------------


def test_refused_connection_and_bad_login_are_retried(demo_db_path, tls_files, tmp_path, monkeypatch, capsys):
    (tmp_path / "digests.toml").write_text(NORTH_ONLY)
    state = tmp_path / "state.json"
    port = free_port()
    smtp_env(monkeypatch, port, tls_files, tmp_path)
    # 1. nothing listens: reported, exit 1, recorded as failed
    assert run_digest(demo_db_path, tmp_path, "--due") == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "cannot connect" in err and "tried again on the next run" in err
    entry = json.loads(state.read_text())["digests"]["Northside director"]["2025-W43"]
    assert entry["status"] == "failed"
    # 2. the server refuses the password (it offers LOGIN only, so this is AUTH LOGIN)
    smtp_env(monkeypatch, port, tls_files, tmp_path, password="wrong")
    with smtp_server(tls_files, exclude=("PLAIN",), port=port) as box:
        assert run_digest(demo_db_path, tmp_path, "--due") == 1
        assert "refused the login" in capsys.readouterr().err
        assert box.envelopes == [] and box.mechanisms == ["LOGIN"]
    # 3. the right password: sent once, then nothing more
    smtp_env(monkeypatch, port, tls_files, tmp_path)
    with smtp_server(tls_files, exclude=("PLAIN",), port=port) as box:
        assert run_digest(demo_db_path, tmp_path, "--due") == 0
        assert run_digest(demo_db_path, tmp_path, "--due") == 0
        assert len(box.envelopes) == 1 and box.mechanisms == ["LOGIN"]
    assert json.loads(state.read_text())["digests"]["Northside director"]["2025-W43"]["status"] == "sent"


def test_a_send_interrupted_midway_is_not_sent_again(demo_db_path, tls_files, tmp_path, monkeypatch, capsys):
    # A run that stopped between recording "sending" and hearing back may have delivered the message: the next
    # run reports it and leaves it to a person, rather than risk a second copy.
    (tmp_path / "digests.toml").write_text(NORTH_ONLY)
    mailer.State(tmp_path / "state.json").set_digest(
        "Northside director", "2025-W43", status="sending", message_id="<digest.2025-W43.x@example.org>"
    )
    with smtp_server(tls_files) as box:
        smtp_env(monkeypatch, box.port, tls_files, tmp_path)
        assert run_digest(demo_db_path, tmp_path, "--due") == 1
        assert box.envelopes == []
    err = capsys.readouterr().err
    assert "stopped while sending <digest.2025-W43.x@example.org>" in err and "not sent" in err


def test_a_connection_lost_during_data_is_uncertain(tls_files, tmp_path):
    # the server takes MAIL and RCPT, then the line drops during DATA: SendUncertain, not SendError
    import threading

    cert, key = tls_files
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve():
        conn, _ = listener.accept()
        f = conn.makefile("rwb")
        f.write(b"220 hi\r\n"), f.flush()
        for line in iter(f.readline, b""):
            word = line[:4].upper()
            if word in (b"EHLO", b"HELO") or word in (b"MAIL", b"RCPT"):
                f.write(b"250 ok\r\n")
            elif word == b"DATA":
                f.write(b"354 go\r\n"), f.flush()
                f.readline()
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
                return
            f.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "o@example.org", "d@example.org", "x"
    msg.set_content("hello\n" * 20000)
    with pytest.raises(mailer.SendUncertain):
        mailer.send(msg, mailer.Settings("127.0.0.1", port, starttls=False, timeout=10))
    thread.join(5)
    listener.close()


def test_dry_run_writes_eml_files_and_records_nothing(demo_db_path, tmp_path, monkeypatch, audit_log, capsys):
    (tmp_path / "digests.toml").write_text(DIGESTS)
    monkeypatch.setenv(mailer.SECRETS_ENV, str(tmp_path / "none.toml"))
    monkeypatch.setenv("OUTCOMES_ROLES", str(tmp_path / "none.toml"))
    for key in mailer.KEYS:
        monkeypatch.delenv(mailer.ENV_PREFIX + key.upper(), raising=False)
    out = tmp_path / "out"
    assert run_digest(demo_db_path, tmp_path, "--recipient", "Nobody", "--dry-run", str(out)) == 2
    assert "no recipient named nobody" in capsys.readouterr().err
    # --recipient: that one only, for the last full week the data cover (20-26 Oct; data through Fri 31 Oct)
    assert (
        run_digest(
            demo_db_path, tmp_path, "--recipient", "northside director", "--dry-run", str(out), now="2025-12-01T09:00"
        )
        == 0
    )
    (eml,) = out.glob("*.eml")
    assert eml.name == "digest-Northside-director-2025-W43.eml"
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "director.north@example.org"
    assert not (tmp_path / "state.json").exists()
    event = [e for e in audit.read(audit_log) if e.get("message_id") == msg["Message-ID"]][-1]
    assert event["delivery"] == "file" and event["sha256"] == hashlib.sha256(eml.read_bytes()).hexdigest()
    # without --dry-run and without settings: a clear error, nothing sent
    assert run_digest(demo_db_path, tmp_path, "--all") == 2


# --------------------------------------------------------------------------------------------------------------
# Alerts: fire, do not repeat, clear, fire again
# --------------------------------------------------------------------------------------------------------------

ALERT = """
[[alerts]]
name = "attendance-low"
label = "IOP attendance"
query = "kpi_iop_attendance"
rate = "attendance_rate"
sites = ["Northside"]
condition = "below"
threshold = {threshold}
recipients = ["Northside director"]
"""


def test_alert_fires_once_clears_and_fires_again(demo_db_path, tls_files, tmp_path, monkeypatch, capsys):
    # Northside's IOP attendance in October 2025 (the last full month) is about 79%. "Now" is Mon 10 Nov, so the
    # weekly digest (for 3-9 Nov) waits for data and only the alert can go out.
    (tmp_path / "digests.toml").write_text(NORTH_ONLY)
    alerts_file = tmp_path / "alerts.toml"
    later = "2025-11-10T07:05"
    with smtp_server(tls_files) as box:
        smtp_env(monkeypatch, box.port, tls_files, tmp_path)
        alerts_file.write_text(ALERT.replace("{threshold}", "0.99"))
        assert run_digest(demo_db_path, tmp_path, "--due", now=later) == 0
        assert len(box.envelopes) == 1  # fires
        out = capsys.readouterr().out
        assert "waiting for data through 9 Nov 2025" in out
        assert run_digest(demo_db_path, tmp_path, "--due", now=later) == 0
        assert len(box.envelopes) == 1  # still holds: not sent again
        alerts_file.write_text(ALERT.replace("{threshold}", "0.01"))
        assert run_digest(demo_db_path, tmp_path, "--due", now=later) == 0
        assert "cleared" in capsys.readouterr().out and len(box.envelopes) == 1
        alerts_file.write_text(ALERT.replace("{threshold}", "0.99"))
        assert run_digest(demo_db_path, tmp_path, "--due", now="2025-11-10T08:05") == 0
        assert len(box.envelopes) == 2  # holds again after clearing: a new alert
        first, second = box.messages()
    assert first["Message-ID"] != second["Message-ID"]
    assert first["Subject"] == "Alert: IOP attendance below 99.0% at Northside"
    body = first.get_body(("plain",)).get_content()
    assert "Oct 2025:" in body and "below 99.0%" in body and notices.PART2 in body
    assert any(p.get_content_type() == "image/png" for p in first.walk())
    assert "Riverside" not in text_of(first) and "Eastgate" not in text_of(first)
    state = json.loads((tmp_path / "state.json").read_text())["alerts"]["attendance-low"]["Northside"]
    assert state["active"] and state["deliveries"]["Northside director"]["status"] == "sent"


def test_digest_lists_the_alerts_that_hold(demo_db, catalog):
    config = digest.parse_digests(NORTH_ONLY)
    rules = alerting.parse_alerts(ALERT.replace("{threshold}", "0.99"), "alerts.toml", config.by_name(), catalog)
    north = config.by_name()["Northside director"]
    built = digest.build(
        demo_db,
        north,
        kpis.Period(dt.date(2025, 10, 20), dt.date(2025, 10, 26)),
        catalog=catalog,
        rules=rules,
        draw=False,
    )
    assert [(a.rule.name, a.site, a.month) for a in built.alerts] == [
        ("attendance-low", "Northside", dt.date(2025, 10, 1))
    ]
    msg = digest.compose(built, config, "o@example.org", dt.datetime(2025, 10, 27, tzinfo=dt.UTC))
    assert "IOP attendance below 99.0% at Northside: Oct 2025:" in msg.get_body(("plain",)).get_content()


def test_overview_rows_for_a_users_sites(demo_db, catalog):
    config = digest.parse_digests(NORTH_ONLY)
    rules = alerting.parse_alerts(ALERT.replace("{threshold}", "0.99"), "alerts.toml", config.by_name(), catalog)
    period = kpis.Period(dt.date(2025, 8, 1), dt.date(2025, 10, 31))
    found, holding = digest.overview_rows(demo_db, ("Northside",), period, rules, catalog)
    assert list(found.columns) == ["measure", "site", "signal"] and set(found["site"]) <= {"Northside"}
    assert list(holding.columns) == ["alert", "site", "condition", "now"]
    assert holding["site"].tolist() == ["Northside"]
    _, none_for_them = digest.overview_rows(demo_db, ("Riverside",), period, rules, catalog)
    assert none_for_them.empty  # the rule is about Northside only


# --------------------------------------------------------------------------------------------------------------
# Configuration, schedules and settings
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, error",
    [
        (
            '[[recipients]]\nname = "A"\nemail = "a@example.org"\nrole = "director"\nsites = ["N"]\nschedule = "weekly funday 07:00"',
            r"recipient 1 \('A'\): schedule 'weekly funday 07:00': 'funday' is not a day",
        ),
        (
            '[[recipients]]\nname = "A"\nemail = "a@example.org"\nrole = "director"\nsites = ["N"]\nschedule = "monthly 31 07:00"',
            "from 1 to 28",
        ),
        (
            '[[recipients]]\nname = "A"\nemail = "not an address"\nrole = "director"\nsites = ["N"]\nschedule = "weekly monday 07:00"',
            r"recipient 1 \('A'\): email",
        ),
        (
            '[[recipients]]\nname = "A"\nemail = "a@example.org"\nrole = "boss"\nsites = ["N"]\nschedule = "weekly monday 07:00"',
            "role must be one of",
        ),
        (
            '[[recipients]]\nname = "A"\nemail = "a@example.org"\nrole = "director"\nsites = []\nschedule = "weekly monday 07:00"',
            "sites must be",
        ),
        (
            '[[recipients]]\nname = "A"\nemail = "a@example.org"\nrole = "director"\nsites = ["N"]\nschedule = "weekly monday 07:00"\nperiod = "year"',
            "period must be",
        ),
        (
            '[[recipients]]\nname = "A"\nemail = "a@example.org"\nrole = "director"\nsites = ["N"]\nschedule = "weekly monday 07:00"\ncc = "x"',
            r"unknown keys \['cc'\]",
        ),
        ('[smtp]\nhost = "mail.example.org"\n', "SMTP settings do not belong in the repository"),
        ('timezone = "Mars/Olympus"\n[[recipients]]\nname = "A"', "not a known time zone"),
        ("recipients = []", "no recipients"),
    ],
)
def test_bad_digests_files_are_refused_with_the_entry_named(text, error):
    with pytest.raises(digest.DigestConfigError, match=error):
        digest.parse_digests(text, "digests.toml")


def test_unknown_sites_and_roles_are_refused(demo_db):
    config = digest.parse_digests(DIGESTS.replace('["Northside"]', '["Northsde"]'), "digests.toml")
    with pytest.raises(digest.DigestConfigError, match=r"'Northside director': unknown sites \['Northsde'\]"):
        digest.check_sites(config, signal_scan.sites_of(demo_db))
    from outcomes.privacy import access

    grants = access.parse_roles(
        '[users."director.north@example.org"]\nrole = "director"\nsites = ["Northside"]\n'
        '[users."director.regional@example.org"]\nrole = "director"\nsites = ["Northside"]\n'
    )
    with pytest.raises(digest.DigestConfigError, match="'Regional director'.*grants only Northside"):
        digest.check_roles(digest.parse_digests(DIGESTS), grants, "roles.toml")


def test_alert_rules_are_checked_against_the_catalog_and_scopes(catalog):
    people = digest.parse_digests(DIGESTS).by_name()
    good = ALERT.replace("{threshold}", "0.5")
    assert alerting.parse_alerts(good, "alerts.toml", people, catalog)[0].params == {"grain": "month"}
    for text, error in [
        (good.replace('"Northside director"', '"Nobody"'), "recipient 'Nobody' is not in the digests file"),
        (good.replace('sites = ["Northside"]', 'sites = ["Riverside"]'), "'Northside director' may not see Riverside"),
        (good.replace('sites = ["Northside"]', 'sites = "*"'), "may not see every site"),
        (good.replace('rate = "attendance_rate"', 'rate = "scheduled"'), "rate must be one of"),
        (good.replace("threshold = 0.5", "threshold = 40"), "threshold must be a share"),
        (good.replace('condition = "below"', 'condition = "signal"'), "takes no threshold"),
        (good + good, "used twice"),
    ]:
        with pytest.raises(alerting.AlertConfigError, match=error):
            alerting.parse_alerts(text, "alerts.toml", people, catalog)


def test_shipped_examples_parse(catalog):
    root = Path(__file__).resolve().parents[1]
    config = digest.load_digests(root / "config" / "digests.example.toml")
    rules = alerting.load_alerts(root / "config" / "alerts.example.toml", config.by_name(), catalog)
    assert len(config.recipients) == 3 and len(rules) == 2


CHICAGO = __import__("zoneinfo").ZoneInfo("America/Chicago")


@pytest.mark.parametrize(
    "schedule, now, latest",
    [
        # Mon 27 Oct 2025 is a Monday: 07:05 is after that day's 07:00, 06:55 is before it (so the Monday before)
        ("weekly monday 07:00", dt.datetime(2025, 10, 27, 7, 5), dt.datetime(2025, 10, 27, 7, 0)),
        ("weekly monday 07:00", dt.datetime(2025, 10, 27, 6, 55), dt.datetime(2025, 10, 20, 7, 0)),
        ("weekly friday 18:30", dt.datetime(2025, 10, 27, 7, 5), dt.datetime(2025, 10, 24, 18, 30)),
        ("monthly 1 07:00", dt.datetime(2025, 11, 1, 7, 0), dt.datetime(2025, 11, 1, 7, 0)),
        ("monthly 1 07:00", dt.datetime(2025, 11, 1, 6, 59), dt.datetime(2025, 10, 1, 7, 0)),
        ("monthly 15 09:00", dt.datetime(2025, 3, 2, 12, 0), dt.datetime(2025, 2, 15, 9, 0)),
    ],
)
def test_schedules(schedule, now, latest):
    assert digest.parse_schedule(schedule).latest(now.replace(tzinfo=CHICAGO)) == latest.replace(tzinfo=CHICAGO)


@pytest.mark.parametrize(
    "kind, day, start, end, key",
    [
        ("week", dt.date(2025, 10, 26), dt.date(2025, 10, 20), dt.date(2025, 10, 26), "2025-W43"),  # a Sunday itself
        ("week", dt.date(2025, 10, 31), dt.date(2025, 10, 20), dt.date(2025, 10, 26), "2025-W43"),  # a Friday
        ("week", dt.date(2026, 1, 4), dt.date(2025, 12, 29), dt.date(2026, 1, 4), "2026-W01"),  # ISO week-year
        ("month", dt.date(2025, 10, 31), dt.date(2025, 10, 1), dt.date(2025, 10, 31), "2025-10"),
        ("month", dt.date(2025, 10, 30), dt.date(2025, 9, 1), dt.date(2025, 9, 30), "2025-09"),
    ],
)
def test_periods(kind, day, start, end, key):
    period = digest.period_before(kind, day)
    assert (period.start, period.end, digest.period_key(period)) == (start, end, key)


def test_smtp_settings_from_secrets_and_environment(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        '[smtp]\nhost = "mail.example.org"\nport = 2525\nusername = "u"\npassword = "p"\n'
        'from = "Outcomes <o@example.org>"\n'
    )
    got = mailer.load_settings(secrets, env={})
    assert (got.host, got.port, got.username, got.starttls, got.sender) == (
        "mail.example.org",
        2525,
        "u",
        True,
        "Outcomes <o@example.org>",
    )
    assert mailer.load_settings(secrets, env={"OUTCOMES_SMTP_PORT": "587"}).port == 587
    assert mailer.load_settings(tmp_path / "none.toml", env={}) is None
    secrets.write_text('[smtp]\nhost = "m"\nusername = "u"\npassword = "p"\nstarttls = false\n')
    with pytest.raises(mailer.SettingsError, match="never sent unencrypted"):
        mailer.load_settings(secrets, env={})
    secrets.write_text('[smtp]\nhost = "m"\nsmarthost = "x"\n')
    with pytest.raises(mailer.SettingsError, match="unknown keys"):
        mailer.load_settings(secrets, env={})


def test_a_server_without_starttls_gets_nothing(tmp_path):
    # with starttls on (the default) a server that does not offer it is refused before any login or data
    from aiosmtpd.controller import Controller

    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        msg = email.message.EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "o@example.org", "d@example.org", "x"
        msg.set_content("hello")
        with pytest.raises(mailer.SendError, match="STARTTLS"):
            mailer.send(msg, mailer.Settings("127.0.0.1", box.port, "u", "p", timeout=10))
        assert box.envelopes == []
    finally:
        controller.stop()


def test_state_file_is_atomic_private_and_fails_closed(tmp_path, demo_db_path, monkeypatch, capsys):
    path = tmp_path / "state.json"
    state = mailer.State(path)
    state.set_digest("A", "2025-W43", status="sent")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert mailer.State.load(path).digest("A", "2025-W43") == {"status": "sent"}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind
    path.write_text("{not json")
    with pytest.raises(mailer.StateError, match="nothing is sent"):
        mailer.State.load(path)
    (tmp_path / "digests.toml").write_text(NORTH_ONLY)
    monkeypatch.setenv(mailer.SECRETS_ENV, str(tmp_path / "none.toml"))
    monkeypatch.setenv("OUTCOMES_ROLES", str(tmp_path / "none.toml"))
    assert run_digest(demo_db_path, tmp_path, "--due", "--dry-run", str(tmp_path / "out")) == 2
    assert "cannot read the digest state" in capsys.readouterr().err
    with mailer.locked(path), pytest.raises(mailer.Busy), mailer.locked(path):
        pass
