"""What a load reports: a problem naming file, line or key and column; the refusal listing them; the result."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

MAX_SHOWN = 50  # problems listed in full; the rest are counted by rule


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: str | None
    rule: str
    message: str
    key: str | None = None  # the row's key, e.g. "episode_id E000123", where the source has no file lines

    def __str__(self) -> str:
        where = self.file
        if self.key is not None:
            where += f", {self.key}"
        elif self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message} [{self.rule}]"


class LoadError(Exception):
    """The extracts broke the contract; nothing was changed."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(self.report())

    def report(self, limit: int = MAX_SHOWN) -> str:
        counts: dict[str, int] = {}
        for p in self.problems:
            counts[f"{p.file} {p.rule}"] = counts.get(f"{p.file} {p.rule}", 0) + 1
        lines = [f"load refused: {len(self.problems)} problem(s); the database was not changed"]
        lines += [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... {len(self.problems) - limit} more; counts by file and rule:")
            lines += [f"    {k}: {v}" for k, v in sorted(counts.items())]
        return "\n".join(lines)


@dataclass
class LoadResult:
    db_path: Path
    changed: bool
    data_through: dt.date
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)


def key_text(key: str, value, row: int) -> str:
    """How a problem names a row by its key: `episode_id E000123`; a row without one by its number."""
    if value is None:
        return f"{key} (empty), row {row}"
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return f"{key} {text[:60]}…" if len(text) > 60 else f"{key} {text}"


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
