"""Checking the audit log's hash chain: the first line that was edited, removed, moved, inserted or cut short."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from outcomes.privacy.audit import GENESIS, ROTATED, log_path, read_head, sha256


@dataclass
class Verification:
    """The state of a log and its rotated files. When broken, `file`, `line` and `problem` say where first."""

    ok: bool
    path: str
    files: list[str] = field(default_factory=list)
    lines: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    file: str | None = None
    line: int | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.ok:
            if not self.lines:
                return f"audit log {self.path}: empty"
            return (
                f"audit log OK: {self.lines:,} lines in {len(self.files)} file(s), seq {self.first_seq}.."
                f"{self.last_seq}, last hash {self.last_hash}" + "".join(f"; {n}" for n in self.notes)
            )
        return f"audit log BROKEN at {self.file} line {self.line}: {self.problem}"


def rotated(path: str | os.PathLike) -> list[Path]:
    """The rotated files of the log at `path`, oldest first."""
    path = Path(path)
    stem, suffix = path.stem, path.suffix
    out = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = ROTATED.match(p.name)
            if m and m["stem"] == stem and m["suffix"] == suffix:
                out.append(p)
    return sorted(out, key=lambda p: p.name)


def file_lines(path: Path):
    """(line number, bytes without the newline, complete) for each line of a file."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            yield n, raw[:-1] if raw.endswith(b"\n") else raw, raw.endswith(b"\n")


def verify(path: str | os.PathLike | None = None, anchor: tuple[int, str] | None = None) -> Verification:
    """Check the chain of the log at `path` (default log_path()) and its rotated files, oldest first.

    Reports the first line that was edited, removed, moved, inserted or cut short, lines missing from the end
    (against the head file), and with `anchor` (seq, sha256 recorded elsewhere) that the line with that seq
    is still there unchanged.
    """
    path = Path(path) if path else log_path()
    head = read_head(path)  # read first: writers update it after appending, so it is never ahead of the log
    files = rotated(path) + ([path] if path.exists() else [])
    state = Verification(ok=True, path=str(path), files=[p.name for p in files])

    def broken(file: Path | str, line: int, problem: str) -> Verification:
        state.ok, state.file, state.line, state.problem = False, Path(file).name, line, problem
        return state

    if not files:
        if head:
            return broken(path, 1, f"the log file is missing (its head file records seq {head['seq']})")
        return state
    expected, prev_hash, prev_where = None, None, None
    start, pruned, hashes = None, set(), {}
    for file in files:
        for n, raw, complete in file_lines(file):
            if not complete:
                return broken(file, n, "the line is incomplete: the file was cut short (truncated)")
            try:
                rec = json.loads(raw)
            except ValueError:
                return broken(file, n, "the line is not a JSON record: it was edited or damaged")
            if not isinstance(rec, dict) or not isinstance(rec.get("seq"), int) or not isinstance(rec.get("prev"), str):
                return broken(file, n, "the line has no seq and prev: it is not part of the chain (edited or inserted)")
            seq = rec["seq"]
            if expected is None:
                start = (file, n, seq, rec["prev"])
            elif seq != expected:
                if seq > expected:
                    gone = f"seq {expected}" if seq == expected + 1 else f"seq {expected} to {seq - 1}"
                    return broken(
                        file,
                        n,
                        f"expected seq {expected}, found {seq}: {gone} missing (deleted), or lines were reordered",
                    )
                return broken(
                    file, n, f"expected seq {expected}, found {seq}: a line was repeated, moved or inserted here"
                )
            elif rec["prev"] != prev_hash:
                where_file, where_line = prev_where
                return broken(
                    where_file,
                    where_line,
                    f"the line was changed after it was written (seq {seq - 1}: the next line holds a "
                    "different hash for it), or a line was inserted or removed after it",
                )
            if rec.get("event") == "log_pruned" and isinstance(rec.get("last_hash"), str):
                pruned.add((rec.get("last_seq"), rec["last_hash"]))
            digest = sha256(raw)
            if anchor and seq == anchor[0]:
                hashes[seq] = digest
            expected, prev_hash, prev_where = seq + 1, digest, (file, n)
            state.lines += 1
            state.last_seq, state.last_hash = seq, digest
            if state.first_seq is None:
                state.first_seq = seq
    if start is not None:
        file, n, seq, prev = start
        if (seq, prev) != (1, GENESIS):
            if (seq - 1, prev) in pruned:
                state.notes.append(f"seq 1..{seq - 1} removed by retention (recorded in the log)")
            else:
                return broken(
                    file,
                    n,
                    f"the log starts at seq {seq} after a line that is not here: earlier "
                    "lines were removed without a retention record",
                )
    if not state.lines and head:
        return broken(
            files[-1], 1, f"the log is empty but its head file records seq {head['seq']}: every line was removed"
        )
    if state.lines:
        last_file = files[-1]
        last_line = prev_where[1]
        if head is None:
            return broken(
                last_file, last_line + 1, "the head file is missing: lines cut from the end could not be noticed"
            )
        if head["seq"] > state.last_seq:
            return broken(
                last_file,
                last_line + 1,
                f"lines after seq {state.last_seq} are missing: the head "
                f"records seq {head['seq']} (the end was cut off)",
            )
        if head["seq"] == state.last_seq and head["hash"] != state.last_hash:
            return broken(
                last_file,
                last_line,
                "the last line was changed after it was written (the head holds a different hash for it)",
            )
    if anchor:
        seq, digest = anchor
        if hashes.get(seq) != digest:
            found = "is missing" if seq not in hashes else "has a different hash"
            return broken(path, 0, f"the anchor seq {seq} recorded elsewhere {found}: the log was rewritten")
    return state
