"""Validate a folder of extracts and build the DuckDB database, all or nothing."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import duckdb

from outcomes.ingest import annotations, contract
from outcomes.ingest.build import build_hash, build_models
from outcomes.ingest.problems import LoadError, LoadResult
from outcomes.ingest.rules import Build
from outcomes.ingest.sources import TableSource, checksum, find_files
from outcomes.privacy import deploy

# DuckDB settings for a load: a memory cap (it spills to disk beyond it) and row order kept as read, so that a
# staged row's rowid is its record number in the file.
LOAD_CONFIG = {"memory_limit": "2GB", "preserve_insertion_order": True}


def _current_load(db_path: Path) -> tuple[dict[str, str], dt.date | None]:
    if not db_path.exists():
        return {}, None
    try:
        con = duckdb.connect(str(db_path), read_only=True)
        try:
            files = dict(con.execute("select table_name, sha256 from load_files").fetchall())
            through = con.execute("select data_through from load_info").fetchone()[0]
            return files, through
        finally:
            con.close()
    except duckdb.Error:
        return {}, None


def load(
    source: str | Path | TableSource,
    db_path: str | Path,
    as_of: dt.date | None = None,
    progress=None,
    prebuilt: str | Path | None = None,
) -> LoadResult:
    """Validate the four extracts in `source` (a folder, or a TableSource) and atomically replace `db_path` with
    a new database. With `prebuilt`, the load-time tables are taken from that folder (`python -m outcomes build`)
    instead of being built here.

    Raises LoadError listing every problem; on any failure `db_path` is left as it was.
    """
    started = time.monotonic()
    db_path = Path(db_path)
    report = progress or (lambda fraction, message: None)
    if isinstance(source, (str, Path)):
        source, tables = Path(source), None
        files, problems = find_files(source)
        label = source.name
    else:
        tables, label = source, source.label
        files, problems = source.find()
    if problems:
        raise LoadError(problems)
    report(0.02, "checksums")
    # A TableSource has no file to checksum, so a load from it always builds anew.
    sums = {name: checksum(path) for name, path in files.items()} if tables is None else {}
    sums["_build"] = build_hash()
    fits = _fits_wanted()
    if fits:
        sums["_fits"] = fits_hash()
    events = annotations.Extract(source if tables is None else None)  # the optional fifth extract
    sums |= events.sums
    if prebuilt is not None:
        from outcomes.ingest import prebuilt as pb

        manifest = pb.read_manifest(Path(prebuilt))
        sums["_prebuilt"] = manifest.sha256
    old_sums, old_through = _current_load(db_path)
    if tables is None and old_sums == sums and (as_of is None or as_of == old_through):
        return LoadResult(db_path, False, old_through, seconds=time.monotonic() - started)

    deploy.private_dir(db_path.parent)
    for stale in db_path.parent.glob(f".{db_path.name}.building-*"):
        if not _pid_alive(stale.name.rsplit("-", 1)[-1]):
            stale.unlink(missing_ok=True)
    tmp = db_path.parent / f".{db_path.name}.building-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(
        str(tmp), config={"autoinstall_known_extensions": False, "autoload_known_extensions": False, **LOAD_CONFIG}
    )
    try:
        build = Build(con, files, tables)
        for i, name in enumerate(contract.TABLES):
            report(0.05 + 0.15 * i, f"reading {build.label(name)}")
            build.stage(name)
        build.check_rows()
        report(0.65, "checking rules")
        through = as_of or build.latest_date() or dt.date.today()
        build.check_rules(through)
        build.problems += events.check(con)
        if build.problems:
            raise LoadError(build.problems)
        report(0.75, "building tables")
        build.publish_tables()
        rows = {name: con.execute(f"select count(*) from {name}").fetchone()[0] for name in contract.TABLES}
        if prebuilt is not None:
            problems = pb.check(manifest, sums, rows)
            if problems:
                raise LoadError(problems)
        con.execute(
            "create table load_info as select $through::date as data_through, now()::timestamp as loaded_at, "
            "$source as source_folder, $seconds::double as load_seconds",
            {"through": through, "source": label, "seconds": 0.0},
        )
        con.execute("create table load_files (table_name varchar, file_name varchar, sha256 varchar, row_count bigint)")
        for name in files:
            con.execute(
                "insert into load_files values ($t, $f, $s, $n)",
                {"t": name, "f": build.label(name), "s": sums.get(name), "n": rows[name]},
            )
        con.execute("insert into load_files values ('_build', 'queries/_build', $s, null)", {"s": sums["_build"]})
        rows |= events.publish(con)
        if prebuilt is not None:
            con.execute(
                "insert into load_files values ('_prebuilt', $f, $s, null)",
                {"f": Path(prebuilt).name, "s": sums["_prebuilt"]},
            )
            report(0.85, "publishing prebuilt tables")
            pb.publish(con, manifest)
        else:
            report(0.85, "building summaries")
            build_models(con)
        if fits:
            report(0.92, "fitting the case-mix models")
            fit_models(con, through)
            con.execute("insert into load_files values ('_fits', 'queries (model:)', $s, null)", {"s": sums["_fits"]})
        con.execute("update load_info set load_seconds = $s", {"s": time.monotonic() - started})
        con.execute("checkpoint")
        con.close()
        os.chmod(tmp, 0o600)  # readable by the server's user only, whatever the umask
        _fsync(tmp)
        os.replace(tmp, db_path)
        report(1.0, "published")
        return LoadResult(db_path, True, through, rows, time.monotonic() - started, build.ignored)
    except BaseException:
        try:
            con.close()
        finally:
            tmp.unlink(missing_ok=True)
            Path(str(tmp) + ".wal").unlink(missing_ok=True)
        raise


def _fits_wanted() -> bool:
    return os.environ.get("OUTCOMES_LOAD_FITS", "1") != "0"


def fits_hash() -> str:
    """The fits' fingerprint (outcomes.catalog.model_store.fingerprint): a load whose data, build and fits are
    all as before publishes nothing new."""
    from outcomes.catalog import model_store
    from outcomes.catalog.query import load_catalog

    return model_store.fingerprint(load_catalog())


def fit_models(con, through: dt.date) -> int:
    """The case-mix fits of every measure's default view, kept in the new database (outcomes.catalog.model_store)
    so that no page, digest or PDF waits seconds for them after a start. `OUTCOMES_LOAD_FITS=0` leaves them to be
    fitted when first asked for."""
    from outcomes.catalog import model_store
    from outcomes.catalog.query import load_catalog

    return model_store.fit_defaults(con, load_catalog(), through)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
