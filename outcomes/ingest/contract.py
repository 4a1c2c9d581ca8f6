"""The data contract: the four input tables, the optional fifth (annotations), their columns and the rules a load
enforces."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LEVELS = ("withdrawal_management", "residential", "php", "iop", "op")
DISCHARGE_REASONS = (
    "completed",
    "left_against_advice",
    "administrative",
    "transferred",
    "incarcerated",
    "deceased",
    "other",
)
SESSION_TYPES = ("individual", "group", "education", "family")
STATUSES = ("attended", "no_show", "client_cancelled", "program_cancelled")
TRACKS = ("day", "evening")
LIVING = ("home", "sober_living", "homeless", "other")
EMPLOYMENT = ("employed", "student", "unemployed", "other")
AGE_BANDS = ("under 18", "18-25", "26-34", "35-44", "45-54", "55-64", "65+", "unknown")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type used to read the file
    required: bool
    description: str
    allowed: tuple[str, ...] = ()
    example: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    description: str
    columns: tuple[Column, ...]
    foreign_keys: dict[str, str] = field(default_factory=dict)  # column -> referenced table

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "clients",
            "client_id",
            "One row per client. De-identified: no names, record numbers, birth dates or contact details.",
            (
                Column("client_id", "VARCHAR", True, "Pseudonymous client id, unique.", example="C000123"),
                Column(
                    "birth_year",
                    "INTEGER",
                    False,
                    "Year of birth; used only for the age band at admission.",
                    example="1988",
                ),
                Column("gender", "VARCHAR", False, "Gender as recorded (free text, kept as given).", example="female"),
                Column(
                    "primary_substance",
                    "VARCHAR",
                    False,
                    "Primary substance at intake (free text, kept as given).",
                    example="opioids",
                ),
                Column(
                    "co_occurring_mh",
                    "BOOLEAN",
                    False,
                    "Co-occurring mental health condition (true/false).",
                    example="true",
                ),
                Column("living_situation", "VARCHAR", False, "Living situation at intake.", LIVING, "sober_living"),
                Column("employment", "VARCHAR", False, "Employment at intake.", EMPLOYMENT, "unemployed"),
            ),
        ),
        Table(
            "enrollments",
            "episode_id",
            "One row per episode of care at one level of care.",
            (
                Column("episode_id", "VARCHAR", True, "Episode id, unique.", example="E000456"),
                Column("client_id", "VARCHAR", True, "The client (must exist in clients).", example="C000123"),
                Column("site", "VARCHAR", True, "Site name.", example="Northside"),
                Column("level_of_care", "VARCHAR", True, "Level of care of the episode.", LEVELS, "residential"),
                Column("admit_date", "DATE", True, "Admission date (YYYY-MM-DD).", example="2025-03-02"),
                Column(
                    "discharge_date",
                    "DATE",
                    False,
                    "Discharge date; empty while enrolled. Not before admit_date.",
                    example="2025-03-30",
                ),
                Column(
                    "discharge_reason",
                    "VARCHAR",
                    False,
                    "Why the episode ended; present exactly when discharge_date is.",
                    DISCHARGE_REASONS,
                    "completed",
                ),
                Column("payer", "VARCHAR", False, "Payer (free text, kept as given).", example="medicaid"),
                Column("track", "VARCHAR", False, "IOP track.", TRACKS, "evening"),
                Column(
                    "asam_level", "VARCHAR", False, "ASAM level as given (e.g. 3.5, 2.1); not validated.", example="3.5"
                ),
            ),
            {"client_id": "clients"},
        ),
        Table(
            "attendance",
            "session_id",
            "One row per scheduled session.",
            (
                Column("session_id", "VARCHAR", True, "Session id, unique.", example="S0001234"),
                Column("episode_id", "VARCHAR", True, "The episode (must exist in enrollments).", example="E000789"),
                Column("session_date", "DATE", True, "Date of the session (YYYY-MM-DD).", example="2025-04-07"),
                Column("session_type", "VARCHAR", True, "Kind of session.", SESSION_TYPES, "group"),
                Column("status", "VARCHAR", True, "What happened.", STATUSES, "attended"),
                Column("duration_minutes", "INTEGER", False, "Scheduled length in minutes.", example="180"),
            ),
            {"episode_id": "enrollments"},
        ),
        Table(
            "transitions",
            "transition_id",
            "One row per referral made at discharge.",
            (
                Column("transition_id", "VARCHAR", True, "Referral id, unique.", example="T000042"),
                Column(
                    "from_episode_id",
                    "VARCHAR",
                    True,
                    "The discharging episode (must exist in enrollments).",
                    example="E000456",
                ),
                Column("referral_date", "DATE", True, "Date of the referral (YYYY-MM-DD).", example="2025-03-30"),
                Column("to_level_of_care", "VARCHAR", True, "Level referred to.", LEVELS, "iop"),
                Column(
                    "to_episode_id",
                    "VARCHAR",
                    False,
                    "Episode the client arrived in; empty when they never arrived.",
                    example="E000789",
                ),
            ),
            {"from_episode_id": "enrollments", "to_episode_id": "enrollments"},
        ),
    )
}

# The optional fifth table: program events drawn on the charts. Not in TABLES, which every load path must
# supply (CSV, Parquet, lake, PostgreSQL, Spark): without an annotations file a load has no annotations.
LABEL_MAX = 80
CATEGORY_MAX = 40
ANNOTATIONS = Table(
    "annotations",
    "annotation_id",
    "Optional. One row per program event (a new service, a staffing gap), drawn on every chart over time.",
    (
        Column("annotation_id", "VARCHAR", True, "Event id, unique.", example="A001"),
        Column("start_date", "DATE", True, "First day of the event (YYYY-MM-DD).", example="2025-03-01"),
        Column(
            "end_date",
            "DATE",
            False,
            "Last day, for an event that lasts; empty for a single day. Not before start_date.",
            example="2025-04-30",
        ),
        Column(
            "site",
            "VARCHAR",
            False,
            "Site the event belongs to (a site in enrollments); empty = all sites.",
            example="Northside",
        ),
        Column(
            "label",
            "VARCHAR",
            True,
            f"What happened, up to {LABEL_MAX} characters on one line; no identifiers.",
            example="Transport service starts",
        ),
        Column(
            "category",
            "VARCHAR",
            False,
            f"Kind of event (free text, up to {CATEGORY_MAX} characters); no identifiers.",
            example="service",
        ),
    ),
)
OPTIONAL_TABLES = {"annotations": ANNOTATIONS}

DATE_COLUMNS = {
    "enrollments": ("admit_date", "discharge_date"),
    "attendance": ("session_date",),
    "transitions": ("referral_date",),
}

# Column names that suggest a direct identifier. Matched against the name with
# separators removed, so "First Name", "first_name" and "FIRSTNAME" all match.
_IDENTIFIER_PATTERNS = {
    "a name": r"(first|last|middle|full|given|family|sur|client|patient|maiden)?name$",
    "a social security number": r"ssn|socialsecurity",
    "a medical record number": r"mrn|medicalrecord",
    "a date of birth": r"dob|dateofbirth|birthdate|birthday",
    "a street address": r"address|street|addr\d?$",
    "a ZIP code": r"zip|postal|postcode",
    "a phone number": r"phone|mobile|cell|fax|telephone",
    "an email address": r"e?mail",
}


def identifier_kind(column: str) -> str | None:
    """Return what a column name looks like if it looks like a direct identifier, else None."""
    flat = re.sub(r"[^a-z0-9]", "", column.lower())
    for kind, pattern in _IDENTIFIER_PATTERNS.items():
        if re.search(pattern, flat):
            return kind
    return None


# Free-text columns: kept as given, so a value could hold an identifier typed into the wrong field.
FREE_TEXT = {"clients": ("gender", "primary_substance"), "enrollments": ("payer", "asam_level")}
OPTIONAL_FREE_TEXT = {"annotations": ("label", "category")}

_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_STREET = (
    r"(street|st|avenue|ave|road|rd|boulevard|blvd|drive|dr|lane|ln|way|court|ct|place|pl|terrace|ter"
    r"|circle|cir|highway|hwy|parkway|pkwy|square|sq)"
)
# What a free-text value must not look like, as one RE2 pattern (DuckDB's regexp_matches), matched ignoring
# case. Six or more digits, whatever separates them, cover SSNs (123-45-6789, 123456789), phone numbers,
# record-number runs and dates with a four-digit year; the rest cover short dates, dates with a month name,
# e-mail addresses and street addresses. Levels such as "3.5" or "2.1" have two digits.
IDENTIFIER_VALUE = "|".join(
    [
        r"(\d[\s().+/-]*){6,}",  # six or more digits: SSN, phone, MRN-like run, 2024-01-05
        r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}\b",  # 1/5/24, 5.1.2024
        rf"\b{_MONTH}\s+\d{{1,2}}(st|nd|rd|th)?,?\s+\d{{2,4}}\b",  # Jan 5, 2024
        rf"\b\d{{1,2}}(st|nd|rd|th)?\s+{_MONTH},?\s+\d{{2,4}}\b",  # 5 January 2024
        r"[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+",  # e-mail
        rf"\b\d{{1,6}}\s+([a-z0-9.'-]+\s+){{0,4}}{_STREET}\b",  # 12 Main St, 1600 Pennsylvania Avenue
        r"\bp\.?\s?o\.?\s+box\s+\d+",  # PO Box 12
    ]
)
