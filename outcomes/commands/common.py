"""What every command shares: the one-line user error, argument parsers, progress lines and who is running."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys


class CliError(Exception):
    """A user error worth one line on stderr."""


def date_arg(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def params_arg(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise CliError(f"--param {pair!r}: expected key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = value
    return out


def print_progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr)


def cli_user() -> str:
    """Who ran a command, for the audit log: cli:LOGIN."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry for this uid (containers)
        return f"cli:uid{os.getuid()}"
