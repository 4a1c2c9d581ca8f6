"""What one script run shows: the user and their sites, the data version, the page and the active filters.

app.py begins it once per run, before navigation and the sidebar; everything after reads it, so a reload or a
changed login in the middle of a run cannot mix two states on one page, and the secrets and roles file are
read once per run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from outcomes.ingest import db
from outcomes.privacy import access
from outcomes.web import auth, database, warm

_KEY = "_run"


@dataclass
class Run:
    user: access.User
    version: db.DataVersion | None  # None for a user without a role: they see no data
    page: str = "/"
    filters: dict = field(default_factory=dict)  # the sidebar's values, None where a filter is not set
    queries: dict | None = field(default=None, repr=False)  # the catalog as this run read it (see catalog())
    memo: dict = field(default_factory=dict, repr=False)  # see once()

    @property
    def scope(self) -> tuple[str, ...] | None:
        return self.user.scope


def begin() -> Run:
    """Start this script run's context: who is signed in and which published database it shows. A server that
    may not serve as configured (see outcomes.privacy.deploy) shows its refusal page instead, and stops."""
    auth.require_serving()
    user = auth.current_user()
    run = Run(user, database.data_version() if user.authorised else None)
    if run.version is not None:
        warm.start(run.version)
    st.session_state[_KEY] = run
    return run


def current() -> Run:
    """This run's context (begun by app.py; begun here for a page script run on its own)."""
    run = st.session_state.get(_KEY)
    return run if run is not None else begin()


def catalog() -> dict:
    """The query catalog, read once per script run: a page asks for it dozens of times, and each reading checks
    every file in queries/. A file added or edited shows on the next run."""
    run = current()
    if run.queries is None:
        run.queries = database.catalog()
    return run.queries


def secret(name: str):
    """auth.secret, read once per script run: with no secrets file, each reading looks for one on disk."""
    return once(("secret", name), lambda: auth.secret(name))


def once(key, make):
    """make()'s value, worked out once in this script run for `key`."""
    memo = current().memo
    if key not in memo:
        memo[key] = make()
    return memo[key]


def restart() -> None:
    """Start the run over on the database now published (a reload replaced the pinned file mid-run)."""
    st.session_state.pop(_KEY, None)
    st.rerun()
