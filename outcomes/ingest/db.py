"""Read-only, hardened DuckDB connections and the identity of the loaded data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from outcomes.paths import DEFAULT_DB

HARDENED = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


class NoDatabase(Exception):
    """There is no loaded database at the path."""


def connect(
    path: str | Path = DEFAULT_DB, threads: int | None = None, extra: dict | None = None
) -> duckdb.DuckDBPyConnection:
    """Open `path` read-only with file access, extensions and configuration changes switched off.

    `extra` adds settings (memory_limit, temp_directory...); it cannot switch a hardened one back on."""
    path = Path(path)
    if not path.exists():
        raise NoDatabase(
            f"no database at {path}; load one with `python -m outcomes load DIR` or `python -m outcomes demo`"
        )
    config = dict(extra or {}) | HARDENED
    if threads:
        config["threads"] = threads
    return duckdb.connect(str(path), read_only=True, config=config)


@dataclass(frozen=True)
class DataVersion:
    """Identifies one published database file; a reload gives a new version."""

    path: str
    inode: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | Path = DEFAULT_DB) -> DataVersion:
        path = Path(path)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise NoDatabase(f"no database at {path}") from None
        return cls(str(path), st.st_ino, st.st_mtime_ns)


class VersionGone(NoDatabase):
    """The file of this data version is no longer at its path: a reload replaced it."""


def open_version(
    version: DataVersion, threads: int | None = None, extra: dict | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the very file `version` names, read-only and hardened, or raise VersionGone.

    DuckDB keeps one database instance per path in a process: connecting to a path again while any connection
    to the old file is open returns the old file's data, even after a reload replaced it. So the file is opened
    through a private hard link named for its version (removed once open), and the link must be the version's
    inode. Where the folder refuses links, the path itself is opened after the same check.
    """
    path = Path(version.path)
    alias = path.with_name(f".{path.name}.open-{os.getpid()}-{version.inode}-{version.mtime_ns}")
    alias.unlink(missing_ok=True)
    try:
        os.link(path, alias)
    except FileNotFoundError:
        raise VersionGone(f"no database at {path} any more") from None
    except OSError:  # a read-only folder or a file system without hard links
        if DataVersion.of(path) != version:
            raise VersionGone(f"{path} was replaced by a newer load") from None
        return connect(path, threads, extra)
    try:
        st = os.stat(alias)
        if (st.st_ino, st.st_mtime_ns) != (version.inode, version.mtime_ns):
            raise VersionGone(f"{path} was replaced by a newer load")
        return connect(alias, threads, extra)
    finally:
        alias.unlink(missing_ok=True)


def load_info(con) -> dict:
    """The load record: data-through date, load time, source and per-table rows."""
    cur = con.cursor()
    try:
        through, loaded_at, source, seconds = cur.execute(
            "select data_through, loaded_at, source_folder, load_seconds from load_info"
        ).fetchone()
        rows = dict(cur.execute("select table_name, row_count from load_files where row_count is not null").fetchall())
    finally:
        cur.close()
    return {"data_through": through, "loaded_at": loaded_at, "source": source, "seconds": seconds, "rows": rows}
