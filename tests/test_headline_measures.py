"""Headline measures on a tiny hand-made fixture, driven through the real command line.

The fixture (tests/fixtures/headline, described client by client in its README.md)
is loaded once with ``--as-of 2025-06-30``. Every expected count below is written
out literally; a small independent reference implementation at the bottom of this
module re-derives the same tables from the CSV files, so each number is checked
twice.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest
from cli_tools import run as run_cli

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "headline"
DATA_THROUGH = "2025-06-30"
Z = 1.959963984540054

STEPDOWN_COLUMNS = ["month", "eligible_discharges", "stepped_down", "stepdown_rate", "ci_low", "ci_high"]
ENGAGEMENT_COLUMNS = ["week", "scheduled_sessions", "attended_sessions", "active_episodes", "attendance_rate"]


# --------------------------------------------------------------------------------------
# Expected tables, written out by hand.
# Step-down rows: (month, eligible_discharges, stepped_down)
# Engagement rows: (week, scheduled_sessions, attended_sessions, active_episodes)
# --------------------------------------------------------------------------------------

# window_days=14, as_of 2025-06-30, all sites, no start/end.
STEPDOWN_W14 = [
    # eligible: SD01, SD02, SD03 (SD10 dropped: withdrawal management same day)
    # stepped:  SD01 (day 0), SD02 (day 14); SD03 is day 15
    ("2025-03-01", 3, 2),
    # eligible: SD04, SD05, SD11-R1 (SD06 deceased; SD09-R1 dropped: residential next day)
    # stepped:  none (SD04 first attended day 19, SD05 PHP only, SD11-R1 IOP on day 23)
    ("2025-04-01", 3, 0),
    # eligible: SD09-R2, SD11-R2, SD14, SD13 (SD07 incarcerated)
    # stepped:  SD09-R2 (day 3), SD11-R2 (day 1); SD14 program-cancelled, SD13 IOP only before
    ("2025-05-01", 4, 2),
    # eligible: SD15 (SD12 discharged 06-25: window runs past 06-30)
    # stepped:  SD15 (day 6)
    ("2025-06-01", 1, 1),
]

# window_days=0: only same-day sessions count; every discharge up to 06-30 has a complete window.
STEPDOWN_W0 = [
    # eligible: SD01, SD02, SD03; stepped: SD01 (day 0)
    ("2025-03-01", 3, 1),
    # eligible: SD04, SD05, SD11-R1; stepped: none
    ("2025-04-01", 3, 0),
    # eligible: SD09-R2, SD11-R2, SD14, SD13; stepped: none (earliest is SD11-R2 on day 1)
    ("2025-05-01", 4, 0),
    # eligible: SD15, SD12 (06-25 + 0 <= 06-30); stepped: none (SD15 day 6, SD12 day 2)
    ("2025-06-01", 2, 0),
]

# window_days=5: discharges up to 06-25 have a complete window.
STEPDOWN_W5 = [
    # eligible: SD01, SD02, SD03; stepped: SD01 (day 0)
    ("2025-03-01", 3, 1),
    # eligible: SD04, SD05, SD11-R1; stepped: none (SD04's day-5 session is a no_show)
    ("2025-04-01", 3, 0),
    # eligible: SD09-R2, SD11-R2, SD14, SD13; stepped: SD09-R2 (day 3), SD11-R2 (day 1)
    ("2025-05-01", 4, 2),
    # eligible: SD15, SD12 (06-25 + 5 = 06-30); stepped: SD12 (day 2); SD15 is day 6
    ("2025-06-01", 2, 1),
]

# window_days=30: only discharges up to 05-31 have a complete window, so no June row.
STEPDOWN_W30 = [
    # eligible: SD01, SD02, SD03; stepped: SD01 (day 0), SD02 (day 14), SD03 (day 15)
    ("2025-03-01", 3, 3),
    # eligible: SD04, SD05, SD11-R1; stepped: SD04 (day 19), SD11-R1 (day 23); SD05 PHP only
    ("2025-04-01", 3, 2),
    # eligible: SD09-R2, SD11-R2, SD14, SD13; stepped: SD09-R2 (day 3), SD11-R2 (day 1)
    ("2025-05-01", 4, 2),
]

# window_days=14, sites=Northside (site of the residential episode).
STEPDOWN_NORTHSIDE = [
    # eligible: SD01, SD02; stepped: SD01, SD02
    ("2025-03-01", 2, 2),
    # eligible: SD04, SD11-R1 (SD06 deceased; SD09-R1 dropped, transfer to Southside); stepped: none
    ("2025-04-01", 2, 0),
    # eligible: SD11-R2, SD13; stepped: SD11-R2
    ("2025-05-01", 2, 1),
    # eligible: SD15; stepped: SD15
    ("2025-06-01", 1, 1),
]

# window_days=30, sites=Southside.
STEPDOWN_SOUTHSIDE_W30 = [
    # eligible: SD03 (SD10 dropped); stepped: SD03 (day 15, IOP at Northside)
    ("2025-03-01", 1, 1),
    # eligible: SD05; stepped: none
    ("2025-04-01", 1, 0),
    # eligible: SD09-R2, SD14 (SD07 incarcerated); stepped: SD09-R2
    ("2025-05-01", 2, 1),
    # (SD12 window incomplete: no June row)
]

# window_days=14, start=2025-03-01, end=2025-03-31.
STEPDOWN_MARCH = [
    # eligible: SD01, SD02, SD03 (SD10 dropped); stepped: SD01, SD02
    ("2025-03-01", 3, 2),
]

# window_days=14, start=2025-03-10, end=2025-04-08 (both bounds are discharge dates in the data).
STEPDOWN_MID_RANGE = [
    # eligible: SD02 (03-10, on the start bound), SD03 (SD10 dropped); stepped: SD02
    ("2025-03-01", 2, 1),
    # eligible: SD04, SD05 (04-08, on the end bound); stepped: none
    ("2025-04-01", 2, 0),
]

# window_days=14 (default), as_of=2025-05-31: discharges on or before 05-17 only.
STEPDOWN_AS_OF_MAY = [
    # eligible: SD01, SD02, SD03; stepped: SD01, SD02
    ("2025-03-01", 3, 2),
    # eligible: SD04, SD05, SD11-R1; stepped: none
    ("2025-04-01", 3, 0),
    # eligible: SD09-R2, SD11-R2, SD14 (SD13 05-20 window incomplete; SD07 incarcerated)
    # stepped:  SD09-R2, SD11-R2
    ("2025-05-01", 3, 2),
]

STEPDOWN_CASES = {
    "defaults": ({}, STEPDOWN_W14),
    "window_14": ({"window_days": "14"}, STEPDOWN_W14),
    "window_0": ({"window_days": "0"}, STEPDOWN_W0),
    "window_5": ({"window_days": "5"}, STEPDOWN_W5),
    "window_30": ({"window_days": "30"}, STEPDOWN_W30),
    "sites_northside": ({"window_days": "14", "sites": "Northside"}, STEPDOWN_NORTHSIDE),
    "sites_southside_w30": ({"window_days": "30", "sites": "Southside"}, STEPDOWN_SOUTHSIDE_W30),
    "sites_both": ({"window_days": "14", "sites": "Northside,Southside"}, STEPDOWN_W14),
    "start_end_march": ({"window_days": "14", "start": "2025-03-01", "end": "2025-03-31"}, STEPDOWN_MARCH),
    "start_end_inclusive": ({"start": "2025-03-10", "end": "2025-04-08"}, STEPDOWN_MID_RANGE),
    "as_of_may": ({"as_of": "2025-05-31"}, STEPDOWN_AS_OF_MAY),
}

# engagement_by_week, defaults (max_weeks=12, all sites, all admit dates).
ENGAGEMENT_ALL = [
    # scheduled 17 = SD01, SD02, SD03, SD04 (no_show), SD09, SD10, SD11, SD12, SD13, SD15 (1 each = 10)
    #                + EN01 x2 (days 0, 6) + EN02 x2 (attended, client_cancelled) + EN04 x1
    #                + EN05 x2 (no_show, attended); SD14 program-cancelled only
    # attended 14   = those ten SD episodes except SD04 (9) + EN01 2 + EN02 1 + EN04 1 + EN05 1
    # active 14     = the ten SD episodes + EN01, EN02, EN04, EN05
    (1, 17, 14, 14),
    # scheduled 5 = SD13 (day 9) + EN01 (day 7 no_show, day 13) + EN02 (day 7) + EN05 (day 10 client_cancelled)
    # attended 3  = SD13, EN01 day 13, EN02 day 7
    # active 4    = SD13, EN01, EN02, EN05 (EN04 program-cancelled only)
    (2, 5, 3, 4),
    # scheduled 5 = SD04 (day 14) + EN01 (day 14) + EN02 (day 14 no_show, day 20) + EN04 (day 14)
    # attended 4  = SD04, EN01, EN02 day 20, EN04
    # active 4    = SD04, EN01, EN02, EN04
    (3, 5, 4, 4),
    # (week 4: no sessions; week 5: only EN01's program-cancelled session -> no rows)
    # EN01 day 35
    (6, 1, 1, 1),
    # EN01 day 77 (day 84 is week 13, beyond max_weeks=12)
    (12, 1, 1, 1),
]

ENGAGEMENT_MAX2 = [
    (1, 17, 14, 14),  # as in the default table
    (2, 5, 3, 4),  # as in the default table
]

ENGAGEMENT_MAX13 = ENGAGEMENT_ALL + [
    (13, 1, 1, 1),  # EN01 day 84
]

ENGAGEMENT_SOUTHSIDE = [
    # scheduled 6 = SD09, SD10, SD12 (1 each) + EN02 x2 + EN04 x1 (SD14 program-cancelled only)
    # attended 5  = SD09, SD10, SD12, EN02 day 0, EN04
    # active 5    = SD09, SD10, SD12, EN02, EN04
    (1, 6, 5, 5),
    # EN02 day 7 (EN04 program-cancelled only)
    (2, 1, 1, 1),
    # scheduled 3 = EN02 x2 (no_show, attended) + EN04; attended 2 = EN02 day 20, EN04; active 2
    (3, 3, 2, 2),
]

ENGAGEMENT_NORTHSIDE = [
    # scheduled 11 = SD01, SD02, SD03, SD04, SD11, SD13, SD15 (7) + EN01 x2 + EN05 x2 (EN03 is PHP)
    # attended 9   = those SD episodes except SD04 (6) + EN01 2 + EN05 1
    # active 9     = the seven SD episodes + EN01 + EN05
    (1, 11, 9, 9),
    # scheduled 4 = SD13 + EN01 x2 + EN05; attended 2 = SD13, EN01 day 13; active 3 = SD13, EN01, EN05
    (2, 4, 2, 3),
    # SD04 day 14, EN01 day 14
    (3, 2, 2, 2),
    (6, 1, 1, 1),  # EN01 day 35
    (12, 1, 1, 1),  # EN01 day 77
]

# IOP admitted 2025-01-01..2025-01-31: EN01, EN02, EN04.
ENGAGEMENT_JANUARY = [
    # scheduled 5 = EN01 x2 + EN02 x2 + EN04; attended 4 = EN01 x2, EN02 day 0, EN04; active 3
    (1, 5, 4, 3),
    # scheduled 3 = EN01 x2 + EN02; attended 2 = EN01 day 13, EN02 day 7; active 2 = EN01, EN02
    (2, 3, 2, 2),
    # scheduled 4 = EN01 + EN02 x2 + EN04; attended 3 = EN01, EN02 day 20, EN04; active 3
    (3, 4, 3, 3),
    (6, 1, 1, 1),  # EN01 day 35
    (12, 1, 1, 1),  # EN01 day 77
]

# IOP admitted 2025-01-08..2025-02-01 (both bounds are admit dates): EN02, EN04, SD13.
ENGAGEMENT_JAN8_FEB1 = [
    # scheduled 4 = EN02 x2 + EN04 + SD13; attended 3 = EN02 day 0, EN04, SD13; active 3
    (1, 4, 3, 3),
    # scheduled 2 = EN02 day 7 + SD13 day 9; attended 2; active 2 (EN04 program-cancelled only)
    (2, 2, 2, 2),
    # scheduled 3 = EN02 x2 + EN04; attended 2 = EN02 day 20, EN04; active 2
    (3, 3, 2, 2),
]

ENGAGEMENT_CASES = {
    "defaults": ({}, ENGAGEMENT_ALL),
    "max_weeks_2": ({"max_weeks": "2"}, ENGAGEMENT_MAX2),
    "max_weeks_13": ({"max_weeks": "13"}, ENGAGEMENT_MAX13),
    "sites_southside": ({"sites": "Southside"}, ENGAGEMENT_SOUTHSIDE),
    "sites_northside": ({"sites": "Northside"}, ENGAGEMENT_NORTHSIDE),
    "start_end_january": ({"start": "2025-01-01", "end": "2025-01-31"}, ENGAGEMENT_JANUARY),
    "start_end_inclusive": ({"start": "2025-01-08", "end": "2025-02-01"}, ENGAGEMENT_JAN8_FEB1),
}


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z) -> tuple[float, float]:
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def query(db: Path, measure: str, params: dict[str, str]) -> tuple[list[str], list[dict[str, str]]]:
    args = ["query", measure, "--db", str(db)]
    for key, value in params.items():
        args += ["--param", f"{key}={value}"]
    args += ["--format", "csv", "--raw"]
    result = run_cli(*args)
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    reader = csv.DictReader(io.StringIO(result.stdout))
    return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("headline") / "h.duckdb"
    result = run_cli("load", "tests/fixtures/headline", "--db", str(path), "--as-of", DATA_THROUGH)
    assert result.returncode == 0, (
        f"load failed ({result.returncode})\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return path


# --------------------------------------------------------------------------------------
# Through the command line
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(STEPDOWN_CASES))
def test_stepdown_rate_cli(db, case):
    params, expected = STEPDOWN_CASES[case]
    columns, rows = query(db, "stepdown_rate", params)
    assert columns == STEPDOWN_COLUMNS
    assert [r["month"] for r in rows] == [m for m, _, _ in expected]
    for row, (month, eligible, stepped) in zip(rows, expected):
        assert int(row["eligible_discharges"]) == eligible, month
        assert int(row["stepped_down"]) == stepped, month
        low, high = wilson(stepped, eligible)
        assert float(row["stepdown_rate"]) == pytest.approx(stepped / eligible, abs=1e-9), month
        assert float(row["ci_low"]) == pytest.approx(low, abs=1e-9), month
        assert float(row["ci_high"]) == pytest.approx(high, abs=1e-9), month


@pytest.mark.parametrize("case", list(ENGAGEMENT_CASES))
def test_engagement_by_week_cli(db, case):
    params, expected = ENGAGEMENT_CASES[case]
    columns, rows = query(db, "engagement_by_week", params)
    assert columns == ENGAGEMENT_COLUMNS
    assert [int(r["week"]) for r in rows] == [w for w, _, _, _ in expected]
    for row, (week, scheduled, attended, active) in zip(rows, expected):
        assert int(row["scheduled_sessions"]) == scheduled, week
        assert int(row["attended_sessions"]) == attended, week
        assert int(row["active_episodes"]) == active, week
        assert float(row["attendance_rate"]) == pytest.approx(attended / scheduled, abs=1e-9), week


# --------------------------------------------------------------------------------------
# Independent reference implementation, checked against the literal tables
# --------------------------------------------------------------------------------------


def _read(table: str) -> list[dict[str, str]]:
    with open(FIXTURE / f"{table}.csv", newline="") as f:
        return list(csv.DictReader(f))


def _d(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def reference_stepdown(params: dict[str, str]) -> list[tuple[str, int, int]]:
    window = int(params.get("window_days", 14))
    as_of = _d(params.get("as_of", DATA_THROUGH))
    start, end = _d(params.get("start", "")), _d(params.get("end", ""))
    sites = set(params["sites"].split(",")) if params.get("sites") else None
    episodes = _read("enrollments")
    level = {e["episode_id"]: e["level_of_care"] for e in episodes}
    client = {e["episode_id"]: e["client_id"] for e in episodes}
    iop_attended = defaultdict(list)
    for s in _read("attendance"):
        if s["status"] == "attended" and level[s["episode_id"]] == "iop":
            iop_attended[client[s["episode_id"]]].append(_d(s["session_date"]))
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in episodes:
        out = _d(e["discharge_date"])
        if e["level_of_care"] != "residential" or out is None or out > as_of:
            continue
        if (sites and e["site"] not in sites) or (start and out < start) or (end and out > end):
            continue
        if e["discharge_reason"] in ("deceased", "incarcerated") or out + timedelta(days=window) > as_of:
            continue
        if any(
            o["client_id"] == e["client_id"]
            and o["episode_id"] != e["episode_id"]
            and o["level_of_care"] in ("residential", "withdrawal_management")
            and 0 <= (_d(o["admit_date"]) - out).days <= 1
            for o in episodes
        ):
            continue
        month = out.replace(day=1).isoformat()
        counts[month][0] += 1
        counts[month][1] += any(0 <= (s - out).days <= window for s in iop_attended[e["client_id"]])
    return [(m, n, x) for m, (n, x) in sorted(counts.items())]


def reference_engagement(params: dict[str, str]) -> list[tuple[int, int, int, int]]:
    max_weeks = int(params.get("max_weeks", 12))
    start, end = _d(params.get("start", "")), _d(params.get("end", ""))
    sites = set(params["sites"].split(",")) if params.get("sites") else None
    iop = {}
    for e in _read("enrollments"):
        admit = _d(e["admit_date"])
        if e["level_of_care"] != "iop" or (sites and e["site"] not in sites):
            continue
        if (start and admit < start) or (end and admit > end):
            continue
        iop[e["episode_id"]] = admit
    weeks: dict[int, list] = defaultdict(lambda: [0, 0, set()])
    for s in _read("attendance"):
        if s["episode_id"] not in iop or s["status"] == "program_cancelled":
            continue
        day = (_d(s["session_date"]) - iop[s["episode_id"]]).days
        if day < 0 or day // 7 + 1 > max_weeks:
            continue
        w = weeks[day // 7 + 1]
        w[0] += 1
        w[1] += s["status"] == "attended"
        w[2].add(s["episode_id"])
    return [(wk, n, a, len(eps)) for wk, (n, a, eps) in sorted(weeks.items())]


@pytest.mark.parametrize("case", list(STEPDOWN_CASES))
def test_reference_stepdown_matches_literal_table(case):
    params, expected = STEPDOWN_CASES[case]
    assert reference_stepdown(params) == expected


@pytest.mark.parametrize("case", list(ENGAGEMENT_CASES))
def test_reference_engagement_matches_literal_table(case):
    params, expected = ENGAGEMENT_CASES[case]
    assert reference_engagement(params) == expected


def test_fixture_respects_the_contract():
    clients = {c["client_id"] for c in _read("clients")}
    episodes = {e["episode_id"]: e for e in _read("enrollments")}
    limit = date.fromisoformat(DATA_THROUGH)
    for e in episodes.values():
        assert e["client_id"] in clients
        admit, out = _d(e["admit_date"]), _d(e["discharge_date"])
        assert admit <= limit and (out is None or admit <= out <= limit)
        assert bool(e["discharge_reason"]) == (out is not None)
    for s in _read("attendance"):
        assert s["episode_id"] in episodes and _d(s["session_date"]) <= limit
    for t in _read("transitions"):
        assert t["from_episode_id"] in episodes
        assert not t["to_episode_id"] or t["to_episode_id"] in episodes
        assert _d(t["referral_date"]) <= limit
