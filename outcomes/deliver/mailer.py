"""Sending e-mail: SMTP settings, one message over STARTTLS with login, and the state file of what was sent.

Settings come from the `[smtp]` table of `.streamlit/secrets.toml` (gitignored) or from OUTCOMES_SMTP_*
environment variables (which win), never from a file in the repository. A password is only ever sent after
STARTTLS, and the server's certificate is checked.

Sending is at most once: the state file records a message as `sending` before the SMTP transaction and `sent`
after it. A failure before the message data went out is certain (`failed`, retried on the next run); a
connection lost while or after the data went out may have delivered it (`sending` stays, and nothing sends it
again by itself). Each message's Message-ID is derived from what it is for (recipient and period), so a
duplicate sent by hand can be told apart from a new message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import smtplib
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path

from outcomes.paths import ROOT

SECRETS = ROOT / ".streamlit" / "secrets.toml"
SECRETS_ENV = "OUTCOMES_SECRETS"
ENV_PREFIX = "OUTCOMES_SMTP_"
KEYS = ("host", "port", "username", "password", "from", "starttls", "cafile", "timeout")
DEFAULT_STATE = ROOT / "data" / "digest_state.json"
STATE_ENV = "OUTCOMES_DIGEST_STATE"
DEFAULT_SENDER = "Treatment outcomes <outcomes@localhost>"


class SettingsError(Exception):
    """The SMTP settings are missing or malformed; the message says where."""


class SendError(Exception):
    """The message was certainly not delivered (refused connection, TLS or login failure, refused address)."""


class SendUncertain(Exception):
    """The connection failed while or after the message data went out: it may have been delivered."""


class StateError(Exception):
    """The state file cannot be read or written; nothing is sent rather than risk sending twice."""


class Busy(Exception):
    """Another run holds the state file's lock."""


@dataclass(frozen=True)
class Settings:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    sender: str = DEFAULT_SENDER
    starttls: bool = True
    cafile: str | None = None  # a CA bundle for a private mail server's certificate
    timeout: float = 30.0


def secrets_path(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env.get(SECRETS_ENV) or SECRETS)


def read_secrets(path: str | os.PathLike | None = None) -> dict:
    """The secrets file as a dict ({} when there is none)."""
    path = Path(path) if path else secrets_path()
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None


def _bool(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{where}: starttls must be true or false, not {value!r}")


def load_settings(secrets: str | os.PathLike | None = None, env: Mapping[str, str] = os.environ) -> Settings | None:
    """SMTP settings from `[smtp]` in the secrets file, each overridden by OUTCOMES_SMTP_<KEY>; None when no
    host is set anywhere. Raises SettingsError naming the bad key."""
    path = Path(secrets) if secrets else secrets_path(env)
    table = read_secrets(path).get("smtp", {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [smtp] must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise SettingsError(f"{path}: [smtp] has unknown keys {unknown} (known: {', '.join(KEYS)})")
    values = dict(table)
    for key in KEYS:
        if env.get(ENV_PREFIX + key.upper()) not in (None, ""):
            values[key] = env[ENV_PREFIX + key.upper()]
    if not values.get("host"):
        return None
    where = f"SMTP settings ({path} [smtp] or {ENV_PREFIX}*)"
    try:
        port = int(values.get("port", 587))
        timeout = float(values.get("timeout", 30))
    except (TypeError, ValueError):
        raise SettingsError(f"{where}: port and timeout must be numbers") from None
    starttls = _bool(values.get("starttls", True), where)
    username = str(values["username"]) if values.get("username") else None
    password = str(values["password"]) if values.get("password") else None
    if username and not password:
        raise SettingsError(f"{where}: username is set but password is not")
    if username and not starttls:
        raise SettingsError(f"{where}: a login needs starttls = true (a password is never sent unencrypted)")
    sender = str(values.get("from") or DEFAULT_SENDER)
    if "@" not in parseaddr(sender)[1]:
        raise SettingsError(f"{where}: from must be an e-mail address, not {sender!r}")
    return Settings(
        str(values["host"]),
        port,
        username,
        password,
        sender,
        starttls,
        str(values["cafile"]) if values.get("cafile") else None,
        timeout,
    )


def wire_bytes(msg: EmailMessage) -> bytes:
    """The message exactly as it goes over SMTP (CRLF line ends): what is hashed, sent and written to .eml."""
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def send(msg: EmailMessage, settings: Settings, data: bytes | None = None) -> None:
    """Send one message: connect, STARTTLS, login, MAIL, RCPT, DATA. Raises SendError when it certainly was not
    delivered and SendUncertain when the connection failed during or after DATA."""
    data = data if data is not None else wire_bytes(msg)
    sender = parseaddr(msg["From"] or settings.sender)[1]
    rcpts = [addr for _, addr in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", [])) if addr]
    if not rcpts:
        raise SendError("the message has no recipients")
    where = f"{settings.host}:{settings.port}"
    try:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"cannot connect to {where}: {exc}") from None
    try:
        try:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=settings.cafile))
                smtp.ehlo()
            if settings.username:
                smtp.login(settings.username, settings.password)
            code, reply = smtp.mail(sender)
            if code != 250:
                raise SendError(f"{where} refused the sender {sender}: {code} {reply.decode(errors='replace')}")
            for rcpt in rcpts:
                code, reply = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    raise SendError(f"{where} refused the recipient {rcpt}: {code} {reply.decode(errors='replace')}")
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(
                f"{where} refused the login for {settings.username}: {exc.smtp_code} "
                f"{exc.smtp_error.decode(errors='replace')}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:  # TLS, a dropped line or a refusal before any data
            raise SendError(f"{where}: {type(exc).__name__}: {exc}") from None
        try:
            smtp.data(data)
        except smtplib.SMTPDataError as exc:  # the server answered: it did not take the message
            raise SendError(
                f"{where} refused the message: {exc.smtp_code} {exc.smtp_error.decode(errors='replace')}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendUncertain(
                f"{where}: the connection failed while the message was sent ({exc}); it may have been delivered"
            ) from None
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()
        with contextlib.suppress(OSError):
            smtp.close()


def state_path(configured: str | os.PathLike | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """$OUTCOMES_DIGEST_STATE, else `configured`, else data/digest_state.json; relative to the repo."""
    path = Path(env.get(STATE_ENV) or configured or DEFAULT_STATE)
    return path if path.is_absolute() else ROOT / path


class State:
    """What was sent: {"digests": {recipient: {period: entry}}, "alerts": {rule: {site: entry}}}."""

    KEEP = 60  # periods kept per recipient

    def __init__(self, path: Path, data: dict | None = None):
        self.path = Path(path)
        self.data = data or {"version": 1, "digests": {}, "alerts": {}}

    @classmethod
    def load(cls, path: str | os.PathLike) -> State:
        """The state at `path`; a missing file is an empty state, an unreadable one an error (fail closed)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise StateError(
                f"cannot read the digest state {path}: {exc}; nothing is sent until it is fixed "
                "(move it aside only if you accept that due digests may go out again)"
            ) from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("digests"), dict)
            or not isinstance(data.get("alerts"), dict)
        ):
            raise StateError(f"the digest state {path} is not a state file (digests and alerts tables)")
        return cls(path, data)

    def digest(self, name: str, period: str) -> dict:
        return self.data["digests"].get(name, {}).get(period, {})

    def set_digest(self, name: str, period: str, **entry) -> None:
        periods = self.data["digests"].setdefault(name, {})
        periods[period] = periods.get(period, {}) | entry
        for old in sorted(periods)[: -self.KEEP]:
            del periods[old]
        self.save()

    def alert(self, rule: str, site: str) -> dict:
        return self.data["alerts"].get(rule, {}).get(site, {})

    def set_alert(self, rule: str, site: str, entry: dict) -> None:
        self.data["alerts"].setdefault(rule, {})[site] = entry
        self.save()

    def save(self) -> None:
        """Write the whole state atomically (a new file, mode 600, fsynced, renamed over the old one)."""
        text = json.dumps(self.data, indent=1, sort_keys=True, default=str).encode("utf-8")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(text)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StateError(f"cannot write the digest state {self.path}: {exc}") from None


@contextlib.contextmanager
def locked(path: str | os.PathLike):
    """Hold an exclusive lock beside the state file for the whole run, so two runs (cron firing again while one
    is still sending) never send the same message; raises Busy when another run holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(f"another digest run holds {path}.lock; nothing done") from None
        yield
    finally:
        os.close(fd)


def now_iso(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
