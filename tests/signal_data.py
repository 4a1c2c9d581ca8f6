"""A small data set with a planted shift and program events, written as extracts for the real loader.

Two sites, 24 months of residential discharges (Jan 2024 - Dec 2025), 40 a month at each site on the 5th,
and an IOP admission 3 days later for some of them (so they step down within 7 and 14 days). Every count and
its complement is over 10, so every point is shown.

- Northside: 26 and 18 of 40 in turn from Jan 2024 to Mar 2025 (15 months, starting with 26), then 14 of 40
  from Apr 2025 to Dec 2025. p-bar = (8*26 + 7*18 + 9*14) / 960 = 460 / 960 = 47.9%; 26/40 is above it, 18/40
  and 14/40 below, so the last 9 months are a run of 9 below (more than round(log2(24) + 3) = 8): "9 months in
  a row below the centre line since Apr 2025". The limits (Laney p′, wider than 3-sigma here) hold every point.
- Riverside: 23 and 17 of 40 in turn: 23 crossings, no signal.

Program events (annotations.csv, EVENTS): a day at Northside, a span at Riverside, a day for all sites.

Load with as_of 2025-12-31.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

AS_OF = dt.date(2025, 12, 31)
MONTHS = [dt.date(2024 + i // 12, i % 12 + 1, 1) for i in range(24)]
PER_MONTH = 40
SIGNAL = "Signal: 9 months in a row below the centre line since Apr 2025."
EVENTS = [
    ["A1", "2025-03-01", "", "Northside", "Transport to IOP starts", "service"],
    ["A2", "2024-06-01", "2024-08-31", "Riverside", "Counsellor posts vacant", "staffing"],
    ["A3", "2025-06-01", "", "", "New intake assessment in use", ""],
]
NORTH_EVENTS = [
    "Event: 1 Mar 2025, Northside: Transport to IOP starts (service)",
    "Event: 1 Jun 2025, all sites: New intake assessment in use",
]
RIVER_EVENT = "Event: 1 Jun – 31 Aug 2024, Riverside: Counsellor posts vacant (staffing)"


def stepped(site: str, i: int) -> int:
    if site == "Northside":
        return (26 if i % 2 == 0 else 18) if i < 15 else 14
    return 23 if i % 2 == 0 else 17


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write(folder: Path, annotations: list[list] | None = None) -> Path:
    """Write the extracts (and an annotations file, when rows are given) into `folder`; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    clients, episodes, sessions, referrals = [], [], [], []
    for site in ("Northside", "Riverside"):
        for i, month in enumerate(MONTHS):
            out = month.replace(day=5)
            for k in range(PER_MONTH):
                cid = f"{site[0]}{i:02d}{k:02d}"
                clients.append([cid, 1980, "female", "opioids", "false", "home", "employed"])
                episodes.append(
                    [f"E{cid}R", cid, site, "residential", out - dt.timedelta(days=20), out, "completed", "", "", ""]
                )
                if k < stepped(site, i):
                    start = out + dt.timedelta(days=3)
                    episodes.append([f"E{cid}I", cid, site, "iop", start, "", "", "", "day", ""])
                    sessions.append([f"S{cid}", f"E{cid}I", start, "group", "attended", 180])
                    referrals.append([f"T{cid}", f"E{cid}R", out, "iop", f"E{cid}I"])
    _write(
        folder / "clients.csv",
        ["client_id", "birth_year", "gender", "primary_substance", "co_occurring_mh", "living_situation", "employment"],
        clients,
    )
    _write(
        folder / "enrollments.csv",
        [
            "episode_id",
            "client_id",
            "site",
            "level_of_care",
            "admit_date",
            "discharge_date",
            "discharge_reason",
            "payer",
            "track",
            "asam_level",
        ],
        episodes,
    )
    _write(
        folder / "attendance.csv",
        ["session_id", "episode_id", "session_date", "session_type", "status", "duration_minutes"],
        sessions,
    )
    _write(
        folder / "transitions.csv",
        ["transition_id", "from_episode_id", "referral_date", "to_level_of_care", "to_episode_id"],
        referrals,
    )
    if annotations is not None:
        _write(
            folder / "annotations.csv",
            ["annotation_id", "start_date", "end_date", "site", "label", "category"],
            annotations,
        )
    return folder
