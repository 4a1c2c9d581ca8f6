"""The load-time tables: queries/_build/*.sql, run in name order, and the checksum that says when to rebuild."""

from __future__ import annotations

import hashlib

import duckdb

from outcomes.paths import BUILD_DIR


def build_hash() -> str:
    """Checksum of the build SQL, so a changed model rebuilds even from identical files."""
    h = hashlib.sha256()
    for path in sorted(BUILD_DIR.glob("*.sql")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def build_models(con) -> None:
    """Run queries/_build/*.sql in name order: derived tables, macros and pre-aggregates."""
    for path in sorted(BUILD_DIR.glob("*.sql")):
        for stmt in duckdb.extract_statements(path.read_text()):
            con.execute(stmt)
