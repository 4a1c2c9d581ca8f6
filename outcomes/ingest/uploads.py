"""Extract files uploaded through the Data page: name and size checks, and a folder for the loader."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

from outcomes.ingest import contract
from outcomes.ingest.loader import Problem

SUFFIXES = (".csv", ".parquet")
DEFAULT_LIMIT_MB = 200  # server.maxUploadSize in .streamlit/config.toml


def table_file(name: str) -> str | None:
    """The contract file name an upload stands for (`clients.csv`, ...), or None when it is not one."""
    path = Path(Path(name).name.lower())
    if path.stem in contract.TABLES and path.suffix in SUFFIXES:
        return path.name
    return None


def check(files: list[tuple[str, int]], limit_mb: int = DEFAULT_LIMIT_MB) -> list[Problem]:
    """Problems with uploads given as (name, size in bytes): unknown names, repeats, files over the limit."""
    problems, seen = [], set()
    expected = ", ".join(f"{t}.csv" for t in contract.TABLES)
    for name, size in files:
        target = table_file(name)
        if target is None:
            problems.append(Problem(name, None, None, "unknown-file",
                                    f"not one of the four extracts ({expected}, or .parquet)"))
        elif target in seen:
            problems.append(Problem(name, None, None, "duplicate-file", f"{target} was uploaded twice"))
        seen.add(target)
        if size > limit_mb * 1024 * 1024:
            problems.append(Problem(name, None, None, "too-large",
                                    f"{size / 1024 / 1024:,.0f} MB is over the upload limit of {limit_mb} MB "
                                    "(server.maxUploadSize); load larger files with `python -m outcomes load`"))
    return problems


def save(files: list[tuple[str, BinaryIO]], folder: Path) -> None:
    """Write uploads (name, readable file) into `folder` under their contract names, for loader.load."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        target = table_file(name)
        if target is None:
            raise ValueError(f"{name} is not an extract file name")
        data.seek(0)
        with open(folder / target, "wb") as out:
            shutil.copyfileobj(data, out, 1 << 20)
