"""The 42 CFR § 2.32 notice and the data use statement that exports carry (PDF pages, Excel, e-mailed reports).

The text is configurable in `config/notice.toml` ($OUTCOMES_NOTICE for another path; see
config/notice.example.toml): a `[notice]` table with `part2` (the full notice), `short` (the one-line form
printed on every PDF page and sheet footer) and `data_use`. Missing keys keep the defaults below; a file that
is present but unreadable stops the export (NoticeError) rather than sending one without its notice.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from outcomes.paths import ROOT

DEFAULT_FILE = ROOT / "config" / "notice.toml"
ENV = "OUTCOMES_NOTICE"

# 42 CFR 2.32(a)(1), statement 1, as amended in 2024 (89 FR 12472).
PART2 = (
    "This record which has been disclosed to you is protected by Federal confidentiality rules (42 CFR part 2). "
    "These rules prohibit you from using or disclosing this record, or testimony that describes the information "
    "contained in this record, in any civil, criminal, administrative, or legislative proceedings by any Federal, "
    "State, or local authority, against the patient, unless authorized by the consent of the patient, except as "
    "provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR 2.64 or 2.65. In "
    "addition, the Federal rules prohibit you from making any other use or disclosure of this record unless at "
    "least one of the following applies: (A) Further use or disclosure is expressly permitted by the written "
    "consent of the individual whose information is being disclosed in this record or as otherwise permitted by "
    "42 CFR part 2. (B) You are a covered entity or business associate and have received the record for "
    "treatment, payment, or health care operations, or (C) You have received the record from a covered entity "
    "or business associate as permitted by 45 CFR part 164, subparts A and E. A general authorization for the "
    "release of medical or other information is NOT sufficient to meet the required elements of written consent "
    "to further use or redisclose the record (see 42 CFR 2.31)."
)
# 42 CFR 2.32(a)(2), statement 2: the short form.
SHORT = "42 CFR part 2 prohibits unauthorized use or disclosure of these records."
DATA_USE = (
    "Data use: for authorised staff of this program, for quality improvement and program evaluation only. "
    "Counts of 1-10 are suppressed. Do not try to identify any person, link these figures with other data, or "
    "share them outside the program without the privacy officer's approval."
)
KEYS = ("part2", "short", "data_use")


class NoticeError(Exception):
    """The notice file is present but cannot be used; nothing is exported without its notice."""


@dataclass(frozen=True)
class Notice:
    part2: str = PART2
    short: str = SHORT
    data_use: str = DATA_USE

    @property
    def full(self) -> str:
        return f"{self.part2}\n\n{self.data_use}"


def notice_path(env: Mapping[str, str] = os.environ) -> Path:
    path = Path(env.get(ENV) or DEFAULT_FILE)
    return path if path.is_absolute() else ROOT / path


def parse(text: str, source: str = "notice file") -> Notice:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NoticeError(f"{source}: not valid TOML: {exc}") from None
    table = data.get("notice")
    if set(data) - {"notice"} or not isinstance(table, dict):
        raise NoticeError(f"{source}: expected one [notice] table with {', '.join(KEYS)}")
    unknown = set(table) - set(KEYS)
    if unknown:
        raise NoticeError(f"{source}: unknown keys {sorted(unknown)} (only {', '.join(KEYS)})")
    for key, value in table.items():
        if not isinstance(value, str) or not value.strip():
            raise NoticeError(f"{source}: {key} must be non-empty text")
    return Notice(**{k: " ".join(v.split()) for k, v in table.items()})


def load(path: str | os.PathLike | None = None) -> Notice:
    """The configured notice: `path`, else $OUTCOMES_NOTICE, else config/notice.toml; defaults when absent."""
    path = Path(path) if path else notice_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Notice()
    except (OSError, UnicodeDecodeError) as exc:
        raise NoticeError(f"{path}: cannot be read: {exc}") from None
    return parse(text, path.name)


def email_text(notice: Notice | None = None) -> str:
    """The block an e-mailed report ends with (plain text)."""
    n = notice or load()
    return f"\n\n-- \n{n.part2}\n\n{n.data_use}\n"


def email_html(notice: Notice | None = None) -> str:
    """The same block for an HTML e-mail."""
    import html

    n = notice or load()
    return (
        f'<hr><p style="font-size:small">{html.escape(n.part2)}</p>'
        f'<p style="font-size:small">{html.escape(n.data_use)}</p>'
    )
