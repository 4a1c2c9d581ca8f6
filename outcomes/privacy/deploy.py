"""Fail closed at start: may this server run as configured? Pure functions, no Streamlit.

- Local single-user mode (no `[auth]` in secrets) is allowed only while the server listens on loopback
  (127.0.0.0/8, ::1, localhost). Bound to anything else, it must have a valid `[auth]` section.
- An `[auth]` section that is present is checked in full (provider keys, placeholders, cookie secret); a
  broken one refuses to serve, and is never taken for local mode.
- A signed-in identity whose token has expired counts as signed out (`expired`).
- What the server writes (the database, the audit log, uploads) is readable by its own user only:
  files 0600, folders 0700 (`private_dir`, PRIVATE_FILE).
"""

from __future__ import annotations

import ipaddress
import math
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
SHARED_KEYS = ("redirect_uri", "cookie_secret")
OPTIONAL_KEYS = frozenset({"client_kwargs", "expose_tokens"})
# Text that marks a value copied from an example rather than filled in.
PLACEHOLDERS = (
    "replace-with",
    "replace_with",
    "replace me",
    "replaceme",
    "example.org",
    "example.com",
    "example.net",
    "changeme",
    "change-me",
    "change_me",
    "your-",
    "your_",
    "<",
    ">",
    "xxx",
    "todo",
    "placeholder",
    "tenant_id",
    "{tenant}",
    "...",
)
# Short marks are not looked for in client_secret or cookie_secret: a random secret may hold "xxx" or "<" by
# chance.
SECRET_PLACEHOLDERS = PLACEHOLDERS[:12]
SECRET_BYTES = 32  # cookie_secret: at least this many random bytes
CONFIG_HINT = (
    'set server.address = "127.0.0.1" in .streamlit/config.toml for single-user local mode, or '
    "configure login: an [auth] section in .streamlit/secrets.toml (see docs/security.md)"
)


@dataclass(frozen=True)
class Decision:
    """How the server may run: "local" (single user, loopback only), "login", or "refused" (with why)."""

    mode: str
    problems: tuple[str, ...] = field(default=())

    @property
    def serving(self) -> bool:
        return self.mode != "refused"

    @property
    def message(self) -> str:
        """One line for the refusal page and the server log."""
        if self.mode == "local":
            return "local single-user mode: no login, listening on loopback only"
        if self.mode == "login":
            return "login required ([auth] in secrets)"
        return "refusing to serve: " + "; ".join(self.problems)


def is_loopback(address: str | None) -> bool:
    """Whether a server.address listens on this machine only. Empty or unset means every interface: no."""
    if address is None:
        return False
    host = str(address).strip().strip("[]").lower()
    if not host:
        return False
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def decide(address: str | None, auth) -> Decision:
    """The serving mode for `server.address` and the `[auth]` section (None when secrets have no [auth])."""
    if auth is not None:
        problems = check_auth(auth)
        return Decision("refused", tuple(problems)) if problems else Decision("login")
    if is_loopback(address):
        return Decision("local")
    shown = repr(address) if address else "unset (every interface)"
    return Decision("refused", (f"server.address is {shown} and no login is configured; {CONFIG_HINT}",))


def _placeholder(value: str, marks: tuple[str, ...] = PLACEHOLDERS) -> str | None:
    low = value.strip().lower()
    for mark in marks:
        if mark in low:
            return mark
    return None


def _url_problem(name: str, value, callback: bool = False) -> str | None:
    url = urlparse(value)
    if url.scheme not in ("https", "http") or not url.netloc:
        return f"{name} must be an absolute https:// URL"
    if url.scheme == "http" and not is_loopback(url.hostname):
        return f"{name} must use https (http only for localhost)"
    if callback and not url.path.rstrip("/").endswith("/oauth2callback"):
        return f"{name} must be this app's address ending in /oauth2callback"
    return None


def secret_problem(secret) -> str | None:
    """Why a cookie secret is too weak, or None: at least 32 random bytes, not a repeated or sequential pattern."""
    if not isinstance(secret, str) or not secret:
        return "cookie_secret is missing"
    s = secret.strip()[:4096]
    hexdigits = set("0123456789abcdefABCDEF")
    b64 = hexdigits | set("ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ+/-_=")
    per_char = 4 if set(s) <= hexdigits else 6 if set(s) <= b64 else 6.5
    if len(s) * per_char < SECRET_BYTES * 8:
        need = math.ceil(SECRET_BYTES * 8 / per_char)
        return (
            f"cookie_secret is too short: {len(s)} characters, at least {need} needed for {SECRET_BYTES} random "
            'bytes (python -c "import secrets; print(secrets.token_hex(32))")'
        )
    counts = Counter(s)
    entropy = -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())
    period = next((p for p in range(1, len(s) // 2 + 1) if s[p:] == s[:-p]), None)
    steps = sum(1 for a, b in zip(s, s[1:]) if abs(ord(b) - ord(a)) <= 1)
    if len(counts) < 12 or entropy < 3.0 or period is not None or steps > len(s) // 3:
        return (
            "cookie_secret is not random (repeated or sequential characters); generate one with secrets.token_hex(32)"
        )
    if _placeholder(s, SECRET_PLACEHOLDERS) or "secret" in s.lower() or "password" in s.lower():
        return "cookie_secret is an example value; generate one with secrets.token_hex(32)"
    return None


def check_auth(auth) -> list[str]:
    """Every problem with an `[auth]` section, each one line; [] when login can be served."""
    if not isinstance(auth, Mapping):
        return ["[auth] in secrets.toml must be a table of settings"]
    problems = []
    for key in SHARED_KEYS:
        if not auth.get(key):
            problems.append(f"[auth] has no {key}")
    named = {k: v for k, v in auth.items() if isinstance(v, Mapping)}
    direct = [k for k in PROVIDER_KEYS if k in auth]
    if not named and not direct:
        problems.append(
            "[auth] names no identity provider: give client_id, client_secret and server_metadata_url "
            "in [auth], or one [auth.NAME] section per provider"
        )
    providers = ({"[auth]": auth} if direct else {}) | {f"[auth.{k}]": v for k, v in named.items()}
    for where, section in providers.items():
        for key in PROVIDER_KEYS:
            if not section.get(key):
                problems.append(f"{where} has no {key}")
        if where != "[auth]" and "_" in where:
            problems.append(f"{where}: provider names cannot contain an underscore")
        if section.get("server_metadata_url"):
            bad = _url_problem(f"{where} server_metadata_url", str(section["server_metadata_url"]))
            if bad:
                problems.append(bad)
    unknown = set(auth) - set(SHARED_KEYS) - set(PROVIDER_KEYS) - OPTIONAL_KEYS - set(named)
    if unknown:
        problems.append(f"[auth] has unknown settings: {', '.join(sorted(unknown))}")
    if auth.get("redirect_uri"):
        bad = _url_problem("redirect_uri", str(auth["redirect_uri"]), callback=True)
        if bad:
            problems.append(bad)
    if auth.get("cookie_secret"):
        bad = secret_problem(auth["cookie_secret"])
        if bad:
            problems.append(bad)
    sections = {"[auth]": auth} | {f"[auth.{k}]": v for k, v in named.items()}
    for where, section in sections.items():
        for key, value in section.items():
            if isinstance(value, str) and key != "cookie_secret":
                mark = _placeholder(value, SECRET_PLACEHOLDERS if key == "client_secret" else PLACEHOLDERS)
                if mark:
                    problems.append(f"{where} {key} is still the example value (contains {mark!r})")
    return problems


def email_verified(claims: Mapping) -> bool:
    """False when the provider says the e-mail is not verified: any `email_verified` other than true, "true" or 1.
    A provider that sends no such claim is taken at its word."""
    if "email_verified" not in claims:
        return True
    value = claims["email_verified"]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in ("true", "1")


def expired(claims: Mapping, now: float | None = None) -> bool:
    """Whether a signed-in identity's token has run out (`exp`, seconds since 1970, at or before `now`).

    An `exp` that is present but unreadable counts as expired. No `exp`: not expired (Streamlit's own cookie
    then applies)."""
    if not claims.get("is_logged_in", True) or "exp" not in claims:
        return False
    now = time.time() if now is None else now
    try:
        exp = float(claims["exp"])
    except (TypeError, ValueError):
        return True
    return not math.isfinite(exp) or exp <= now


def private_dir(folder: str | os.PathLike) -> Path:
    """Create `folder` and its missing parents with mode 0700; folders that exist are left as they are."""
    folder = Path(folder)
    missing = []
    p = folder
    while not p.exists():
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass
        else:
            os.chmod(p, PRIVATE_DIR)  # mkdir's mode is cut by the umask; 0700 never needs more
    return folder
