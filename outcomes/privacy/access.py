"""Who may see what: the roles file, a signed-in user's role and sites, and permissions. No Streamlit here.

The roles file (TOML) maps e-mail addresses to a role and the sites the user may see:

    [users."director.north@example.org"]
    role = "director"
    sites = ["North"]

    [users."analyst@example.org"]
    role = "analyst"
    sites = "*"            # every site

    [users."sub:248289761001"]   # the provider's subject id (`sub`), for a provider without verified e-mails
    role = "director"
    sites = ["South"]
    issuer = "https://accounts.google.com"   # optional: the `iss` the subject must come from

With login on, access is denied by default: a user who is not in the file has no role and sees nothing.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from outcomes.paths import ROOT
from outcomes.privacy import deploy

DEFAULT_ROLES = ROOT / "config" / "roles.toml"
ROLES_ENV = "OUTCOMES_ROLES"
ALL = "*"
SUB = "sub:"  # a roles-file key starting with this is a provider subject id, not an e-mail

ROLES = ("director", "analyst", "admin")

# What each role may do. adhoc_sql and raw output also need every site: neither can be limited to some.
ACTIONS: dict[str, frozenset[str]] = {
    "view": frozenset({"director", "analyst", "admin"}),
    "export": frozenset({"director", "analyst", "admin"}),
    "adhoc_sql": frozenset({"analyst", "admin"}),
    "raw": frozenset({"analyst", "admin"}),
    "manage_data": frozenset({"admin"}),
}
ALL_SITES_ONLY = frozenset({"adhoc_sql", "raw", "manage_data"})


class RolesError(Exception):
    """The roles file is malformed; the message names the entry."""


@dataclass(frozen=True)
class Grant:
    role: str
    sites: tuple[str, ...] | None  # None: every site
    issuer: str | None = None  # for a subject id: the `iss` it must come from (None: any)


@dataclass(frozen=True)
class User:
    """The person using the app. `sites` None means every site; `role` None means no access at all."""

    email: str | None
    role: str | None
    sites: tuple[str, ...] | None = ()
    local: bool = False  # no login configured: one local user with every right
    signed_in: bool = False
    subject: str | None = None  # the provider's `sub`

    @property
    def authorised(self) -> bool:
        return self.role is not None

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The sites every query is limited to: None for every site, () for none."""
        return self.sites if self.authorised else ()

    def can(self, action: str) -> bool:
        """Whether this user may do `action` (one of ACTIONS)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
        if self.role not in ACTIONS[action]:
            return False
        return self.sites is None or action not in ALL_SITES_ONLY

    @property
    def label(self) -> str:
        """Who, for the audit log and the sidebar."""
        if self.local:
            return "local"
        return self.email or (f"{SUB}{self.subject}" if self.subject else "anonymous")


LOCAL_USER = User(email=None, role="admin", sites=None, local=True)
ANONYMOUS = User(email=None, role=None, sites=())


def roles_path(configured: str | os.PathLike | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """$OUTCOMES_ROLES, else `configured` (the `roles_file` secret), else config/roles.toml; relative to the repo."""
    path = Path(env.get(ROLES_ENV) or configured or DEFAULT_ROLES)
    return path if path.is_absolute() else ROOT / path


def parse_roles(text: str, source: str = "roles file") -> dict[str, Grant]:
    """Grants by lower-cased e-mail, or by "sub:ID" for a subject id, from the TOML text of a roles file;
    raises RolesError."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RolesError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"users"}
    if unknown:
        raise RolesError(f'{source}: unknown sections {sorted(unknown)} (only [users."email"] entries)')
    users = data.get("users", {})
    if not isinstance(users, dict):
        raise RolesError(f'{source}: users must be a table of [users."email"] entries')
    grants: dict[str, Grant] = {}
    for email, entry in users.items():
        where = f"{source}: users.{email!r}"
        by_sub = email.strip().lower().startswith(SUB)
        allowed_keys = {"role", "sites", "issuer"} if by_sub else {"role", "sites"}
        if not isinstance(entry, dict) or set(entry) - allowed_keys:
            raise RolesError(f"{where}: takes role and sites only" + (" (and issuer)" if by_sub else ""))
        role = entry.get("role")
        if role not in ROLES:
            raise RolesError(f"{where}: role must be one of {', '.join(ROLES)}, not {role!r}")
        sites = entry.get("sites")
        if sites == ALL:
            allowed = None
        elif isinstance(sites, list) and sites and all(isinstance(s, str) and s.strip() for s in sites):
            allowed = tuple(dict.fromkeys(s.strip() for s in sites))
        else:
            raise RolesError(f'{where}: sites must be "*" or a non-empty list of site names')
        issuer = entry.get("issuer")
        if issuer is not None and not (isinstance(issuer, str) and issuer.strip()):
            raise RolesError(f"{where}: issuer must be the provider's issuer URL")
        if by_sub:
            subject = email.strip()[len(SUB) :].strip()
            if not subject:
                raise RolesError(f"{where}: a subject id after {SUB!r} is needed")
            key = SUB + subject  # subject ids are compared exactly, case and all
        else:
            key = email.strip().lower()
            if "@" not in key:
                raise RolesError(f"{where}: a key is an e-mail address or {SUB}SUBJECT_ID")
        if key in grants:
            raise RolesError(f"{where}: listed twice")
        grants[key] = Grant(role, allowed, issuer.strip() if issuer else None)
    return grants


def load_roles(path: str | os.PathLike) -> dict[str, Grant]:
    """The roles file at `path`; a missing file grants nothing (deny by default)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return parse_roles(text, path.name)


def resolve(claims: Mapping, grants: Mapping[str, Grant], now: float | None = None) -> User:
    """The user for a signed-in identity (OIDC claims such as st.user's): their grant, or no role.

    A token whose `exp` has passed counts as signed out. The grant is found by subject id (`sub`, and `iss`
    when the entry names an issuer), else by e-mail; an e-mail counts only when the provider does not say
    it is unverified (`email_verified` must be true when sent).
    """
    if not claims.get("is_logged_in") or deploy.expired(claims, now):
        return ANONYMOUS
    email = str(claims.get("email") or "").strip().lower() or None
    subject = str(claims.get("sub") or "").strip() or None
    grant = grants.get(SUB + subject) if subject else None
    if grant is not None and grant.issuer is not None and grant.issuer != str(claims.get("iss") or "").strip():
        grant = None
    if grant is None and email and deploy.email_verified(claims):
        grant = grants.get(email)
    if grant is None:
        return User(email=email, role=None, sites=(), signed_in=True, subject=subject)
    return User(email=email, role=grant.role, sites=grant.sites, signed_in=True, subject=subject)


def limit_sites(requested: list[str] | None, scope: tuple[str, ...] | list[str] | None) -> list[str] | None:
    """The sites a query may read: `requested` (None: all) within `scope` (None: all). May be empty."""
    if scope is None:
        return requested
    allowed = list(dict.fromkeys(scope))
    if requested is None:
        return allowed
    return [s for s in dict.fromkeys(requested) if s in allowed]
