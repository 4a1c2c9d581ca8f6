"""The command line run in-process, through `outcomes.cli.main(argv)`, as a test sees a finished command."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from outcomes import cli

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(*args, stdin: str | None = None) -> Ran:
    """`python -m outcomes ARGS` in this process, from the repository folder; argparse's exits become codes."""
    out, err = io.StringIO(), io.StringIO()
    here, old_stdin = os.getcwd(), sys.stdin
    os.chdir(ROOT)
    sys.stdin = io.StringIO(stdin or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main([str(a) for a in args])
            except SystemExit as exc:  # argparse: --help, or a usage error
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(here)
        sys.stdin = old_stdin
    return Ran(code, out.getvalue(), err.getvalue())
