"""IOP, census and pathway measures on one tiny hand-made fixture.

The fixture (tests/fixtures/measures_iop, described client by client in its README.md)
is loaded once with as_of 2025-06-30. Every expected table below is written out by hand,
with a comment naming the fixture clients behind each number. A small independent
re-computation at the bottom of this module derives the same tables from the CSV files,
so each number is checked twice; for the wider cases (all weeks, the full daily retention
grid) the query is compared with that re-computation directly, and the retention curve is
also compared with outcomes.measures.stats.kaplan_meier.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

from outcomes.measures.stats import kaplan_meier, survival_at

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "measures_iop"
FIXTURE = ROOT / "tests" / "fixtures" / FOLDER
AS_OF = "2025-06-30"


@pytest.fixture(scope="module")
def con(build_db):
    return build_db(FOLDER, AS_OF)


def rows(df: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """The named columns as tuples, dates as ISO strings, numpy scalars as Python values."""
    out = df[columns].copy()
    for col in columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
    return [tuple(v.item() if hasattr(v, "item") else v for v in r) for r in out.itertuples(index=False)]


# ======================================================================================
# iop_initiation_engagement
# rows: (stratum, month, new_episodes, initiated, engaged)
# ======================================================================================

IET_COLUMNS = ["stratum", "month", "new_episodes", "initiated", "engaged", "initiation_rate", "engagement_rate"]

# Defaults: IOP admitted on or before 2025-05-14 (= 06-30 - 47). Excluded: IE (residential discharge
# exactly 194 days before), IH (residential discharge 15 days before), IK (residential stay spanning
# the lookback), IN-I2 (IOP discharged 49 days before), IM/P2/R4 (admitted after 05-14).
IET_DEFAULT = [
    # IN-I1: initiated day 0, further attended days 2 and 4 -> engaged
    ("new", "2025-02-01", 1, 1, 1),
    # IA, IB, IC. Initiated: IA (first attended day 13), IC (day 0); IB's first attended is day 14.
    # Engaged: IA (further days 7 and 34 after initiation); IC has day 1 and day 35 only.
    ("new", "2025-03-01", 3, 2, 1),
    # ID, IF (residential discharge 195 days before). Both initiated day 0; neither engaged
    # (ID's two further sessions are on one day, IF has none).
    ("new", "2025-04-01", 2, 2, 0),
    # IL (admitted 05-14, exactly 47 days before as_of), P1, R1, R2, R3. Initiated: IL, P1 (its 05-02
    # session is before admission). Engaged: P1. R1-R3 have no sessions.
    ("new", "2025-05-01", 5, 2, 1),
    # IG: residential discharge 14 days before; initiated day 0, further days 2 and 4
    ("stepdown", "2025-03-01", 1, 1, 1),
    # II (discharge same day; first attended day 14 -> not initiated),
    # IJ (residential admitted and discharged on the IOP admit date: also "new"; stepdown wins) initiated
    ("stepdown", "2025-04-01", 2, 1, 0),
]

# as_of 2025-05-17: admitted on or before 2025-03-31 (IG, IH admitted exactly on that day).
IET_AS_OF_MAY17 = [
    ("new", "2025-02-01", 1, 1, 1),  # IN-I1
    ("new", "2025-03-01", 3, 2, 1),  # IA, IB, IC as in the default table
    ("stepdown", "2025-03-01", 1, 1, 1),  # IG (IH excluded)
]

IET_APRIL = [
    ("new", "2025-04-01", 2, 2, 0),  # ID, IF
    ("stepdown", "2025-04-01", 2, 1, 0),  # II, IJ
]

# Southside IOP episodes; lookups of earlier care are on all sites.
IET_SOUTHSIDE = [
    ("new", "2025-03-01", 1, 0, 0),  # IB
    ("new", "2025-04-01", 2, 2, 0),  # ID, IF
    ("new", "2025-05-01", 2, 1, 0),  # IL (initiated), R2
    ("stepdown", "2025-04-01", 1, 1, 0),  # IJ
]

# Northside IOP episodes. IE's IOP is at Northside but its residential history (Southside) still excludes it.
IET_NORTHSIDE = [
    ("new", "2025-02-01", 1, 1, 1),  # IN-I1
    ("new", "2025-03-01", 2, 2, 1),  # IA (engaged), IC
    ("new", "2025-05-01", 3, 1, 1),  # P1 (initiated, engaged), R1, R3
    ("stepdown", "2025-03-01", 1, 1, 1),  # IG
    ("stepdown", "2025-04-01", 1, 0, 0),  # II
]

# genders=female: IA, ID, IG, IJ, IL, P1, R1, R3.
IET_FEMALE = [
    ("new", "2025-03-01", 1, 1, 1),  # IA
    ("new", "2025-04-01", 1, 1, 0),  # ID
    ("new", "2025-05-01", 4, 2, 1),  # IL, P1 initiated; P1 engaged; R1, R3 not
    ("stepdown", "2025-03-01", 1, 1, 1),  # IG
    ("stepdown", "2025-04-01", 1, 1, 0),  # IJ
]

IET_CASES = {
    "defaults": ({}, IET_DEFAULT),
    "as_of_may17": ({"as_of": "2025-05-17"}, IET_AS_OF_MAY17),
    "start_end_april": ({"start": "2025-04-01", "end": "2025-04-30"}, IET_APRIL),
    "sites_southside": ({"sites": "Southside"}, IET_SOUTHSIDE),
    "sites_northside": ({"sites": "Northside"}, IET_NORTHSIDE),
    "genders_female": ({"genders": "female"}, IET_FEMALE),
}


@pytest.mark.parametrize("case", list(IET_CASES))
def test_iop_initiation_engagement(con, run_query, case):
    params, expected = IET_CASES[case]
    df = run_query(con, "iop_initiation_engagement", **params)
    assert list(df.columns) == IET_COLUMNS
    assert rows(df, IET_COLUMNS[:5]) == expected
    for _, r in df.iterrows():
        assert r["initiation_rate"] == pytest.approx(r["initiated"] / r["new_episodes"])
        assert r["engagement_rate"] == pytest.approx(r["engaged"] / r["new_episodes"])


# ======================================================================================
# iop_dose
# rows: (track, client_weeks, weeks_3plus_sessions, weeks_9plus_hours)
# ======================================================================================

DOSE_COLUMNS = [
    "track",
    "client_weeks",
    "weeks_3plus_sessions",
    "weeks_9plus_hours",
    "share_3plus_sessions",
    "share_9plus_hours",
]

DOSE_DEFAULT = [
    # weeks: IB 3, ID 2, IE 12 (open: day 77 = week 12), IF 5, IG 6, IH 3, IL 7, IM 1, IN-I1 4,
    #        IN-I2 12, P1 3 (its 05-26 session is in week 4, after discharge) = 58
    # 3+ sessions: ID w1 (180+180+50 = 410 min), IG w1, IN-I1 w1, P1 w1 and w3 = 5
    # 9+ hours: IG w1 (540), P1 w1 (540), P1 w2 (2 x 300), P1 w3 (3 sessions, one without duration) = 4;
    #           ID w1 (410) and IN-I1 w1 (530) fall short
    ("day", 58, 5, 4),
    # weeks: IA 7, IC 6, II 5, IK 10 (open: day 69), R1 3, R2 3, R3 2, R4 3 = 39
    # 3+ sessions: IK w1; 9+ hours: IK w1 (540), IK w2 (2 x 300)
    ("evening", 39, 1, 2),
    # weeks: IJ 13 (open: day 84), P2 4 (open: day 21) = 17; P2 w1 has 540 known minutes in 2 sessions plus
    # one without duration, so it falls back to the session rule and fails
    ("unknown", 17, 0, 0),
]

DOSE_MAY5 = [  # admitted 2025-05-05: P1 and R3
    ("day", 3, 2, 3),  # P1: w1 both rules, w2 hours only (2 x 300 min), w3 both (hours by the fallback)
    ("evening", 2, 0, 0),  # R3: 10 days, two weeks without sessions
]
DOSE_JUNE = [
    ("evening", 3, 0, 0),  # R4: 20 days, three weeks without sessions
    ("unknown", 4, 0, 0),  # P2: open, weeks 1-4 up to as_of (week 2 has no sessions)
]
DOSE_EVENING = [("evening", 39, 1, 2)]  # as in the default table

DOSE_CASES = {
    "defaults": ({}, DOSE_DEFAULT),
    "admitted_may5": ({"start": "2025-05-05", "end": "2025-05-05"}, DOSE_MAY5),
    "june_admits": ({"start": "2025-06-01"}, DOSE_JUNE),
    "tracks_evening": ({"tracks": "evening"}, DOSE_EVENING),
}


@pytest.mark.parametrize("case", list(DOSE_CASES))
def test_iop_dose(con, run_query, case):
    params, expected = DOSE_CASES[case]
    df = run_query(con, "iop_dose", **params)
    assert list(df.columns) == DOSE_COLUMNS
    assert rows(df, DOSE_COLUMNS[:4]) == expected
    for _, r in df.iterrows():
        assert r["share_3plus_sessions"] == pytest.approx(r["weeks_3plus_sessions"] / r["client_weeks"])
        assert r["share_9plus_hours"] == pytest.approx(r["weeks_9plus_hours"] / r["client_weeks"])


# ======================================================================================
# iop_retention
# per group: (last day of the grid, {day: (at_risk, dropouts, retained)})
# ======================================================================================

RETENTION_COLUMNS = ["entry_route", "track", "curve", "day", "at_risk", "dropouts", "retained"]

RETENTION_DEFAULT = {
    # IM 0 (event), ID 9 (event), IB 18 (event), IH 18 (event; 15 days after residential = direct),
    # P1 20 (completed: censored), IN-I1 21 (event), IF 28 (completed), IL 47 (open), IE 77 (open), IN-I2 77 (open)
    ("direct", "day"): (
        77,
        {
            0: (10, 1, 0.9),  # day-0 dropout
            1: (9, 0, 0.9),
            9: (9, 1, 0.8),  # 0.9 * 8/9
            10: (8, 0, 0.8),
            18: (8, 2, 0.6),  # tie of two events: 0.8 * 6/8
            19: (6, 0, 0.6),
            20: (6, 0, 0.6),  # P1 censored at 20, still at risk that day
            21: (5, 1, 0.48),  # 0.6 * 4/5
            22: (4, 0, 0.48),
            29: (3, 0, 0.48),
            30: (3, 0, 0.48),
            48: (2, 0, 0.48),
            60: (2, 0, 0.48),
            77: (2, 0, 0.48),
        },
    ),
    # R3 10 (incarcerated: event), R1 20 (event), R4 20 (event), R2 20 (transferred: censored),
    # IC 35 (administrative: event), IA 47 (completed), IK 69 (open; its residential ended after admission)
    ("direct", "evening"): (
        69,
        {
            0: (7, 0, 1.0),
            10: (7, 1, 6 / 7),
            11: (6, 0, 6 / 7),
            20: (6, 2, 4 / 7),  # two events and a censoring at 20: 6/7 * 4/6
            21: (3, 0, 4 / 7),
            30: (3, 0, 4 / 7),
            35: (3, 1, 8 / 21),  # 4/7 * 2/3
            36: (2, 0, 8 / 21),
            48: (1, 0, 8 / 21),
            60: (1, 0, 8 / 21),
            69: (1, 0, 8 / 21),
        },
    ),
    ("direct", "unknown"): (21, {0: (1, 0, 1.0), 21: (1, 0, 1.0)}),  # P2 open, censored at 21
    ("stepdown", "day"): (39, {0: (1, 0, 1.0), 30: (1, 0, 1.0), 39: (1, 0, 1.0)}),  # IG completed at 39
    ("stepdown", "evening"): (28, {0: (1, 0, 1.0), 27: (1, 0, 1.0), 28: (1, 1, 0.0)}),  # II: only one at risk drops out
    ("stepdown", "unknown"): (84, {0: (1, 0, 1.0), 30: (1, 0, 1.0), 60: (1, 0, 1.0), 84: (1, 0, 1.0)}),  # IJ open
}

# as_of 2025-05-18, tracks=evening: R1 and R2 are discharged after as_of (censored at 17), IK open at 26,
# R4 not yet admitted.
RETENTION_EVENING_MAY18 = {
    # R3 10 (event), R1 17, R2 17, IK 26, IC 35 (event), IA 47
    ("direct", "evening"): (
        47,
        {
            0: (6, 0, 1.0),
            10: (6, 1, 5 / 6),
            11: (5, 0, 5 / 6),
            17: (5, 0, 5 / 6),
            18: (3, 0, 5 / 6),
            26: (3, 0, 5 / 6),
            27: (2, 0, 5 / 6),
            35: (2, 1, 5 / 12),  # 5/6 * 1/2
            36: (1, 0, 5 / 12),
            47: (1, 0, 5 / 12),
        },
    ),
    ("stepdown", "evening"): (28, {28: (1, 1, 0.0)}),  # II
}

# max_day=30 cuts every grid at 30 (groups ending earlier keep their own end).
RETENTION_MAX30 = {
    ("direct", "day"): (30, {30: (3, 0, 0.48)}),
    ("direct", "evening"): (30, {30: (3, 0, 4 / 7)}),
    ("direct", "unknown"): (21, {21: (1, 0, 1.0)}),
    ("stepdown", "day"): (30, {30: (1, 0, 1.0)}),
    ("stepdown", "evening"): (28, {28: (1, 1, 0.0)}),
    ("stepdown", "unknown"): (30, {30: (1, 0, 1.0)}),
}

RETENTION_CASES = {
    "defaults": ({}, RETENTION_DEFAULT),
    "evening_as_of_may18": ({"as_of": "2025-05-18", "tracks": "evening"}, RETENTION_EVENING_MAY18),
    "max_day_30": ({"max_day": "30"}, RETENTION_MAX30),
}


@pytest.mark.parametrize("case", list(RETENTION_CASES))
def test_iop_retention(con, run_query, case):
    params, expected = RETENTION_CASES[case]
    df = run_query(con, "iop_retention", **params)
    assert list(df.columns) == RETENTION_COLUMNS
    groups = {key: g for key, g in df.groupby(["entry_route", "track"])}
    assert sorted(groups) == sorted(expected)
    for key, (last_day, points) in expected.items():
        g = groups[key]
        assert g["day"].tolist() == list(range(last_day + 1)), key  # dense grid, only where defined
        assert (g["curve"] == f"{key[0]}, {key[1]}").all()
        by_day = g.set_index("day")
        for day, (at_risk, dropouts, retained) in points.items():
            assert by_day.loc[day, "at_risk"] == at_risk, (key, day)
            assert by_day.loc[day, "dropouts"] == dropouts, (key, day)
            assert by_day.loc[day, "retained"] == pytest.approx(retained, abs=1e-12), (key, day)


def test_iop_retention_matches_stats_kaplan_meier(con, run_query):
    df = run_query(con, "iop_retention")
    for (route, track), spells in reference_retention_spells({}).items():
        km = kaplan_meier([d for d, _ in spells], [e for _, e in spells])
        g = df[(df["entry_route"] == route) & (df["track"] == track)]
        assert len(g) == max(d for d, _ in spells) + 1
        for _, r in g.iterrows():
            survival, at_risk = survival_at(km, r["day"])
            assert r["retained"] == pytest.approx(survival, abs=1e-12), (route, track, r["day"])
            assert r["at_risk"] == at_risk, (route, track, r["day"])


# ======================================================================================
# census
# rows: (week_start, level_of_care, active_clients)
# ======================================================================================

CENSUS_COLUMNS = ["week_start", "level_of_care", "active_clients"]

# start 2025-01-06, end 2025-01-26: weeks of 01-06, 01-13, 01-20. IK's residential stay (2024-09-02 to
# 2025-05-02) is the only residential or IOP care in these weeks.
CENSUS_JANUARY = [
    ("2025-01-06", "iop", 0),
    ("2025-01-06", "op", 0),
    ("2025-01-06", "php", 1),  # CW1 admitted Sunday 01-12, the last day of the week
    ("2025-01-06", "residential", 1),  # IK
    ("2025-01-06", "withdrawal_management", 0),
    ("2025-01-13", "iop", 0),
    ("2025-01-13", "op", 1),  # CW3: two op episodes in the week, one client
    ("2025-01-13", "php", 2),  # CW1, CW2 (admitted Monday 01-13)
    ("2025-01-13", "residential", 1),
    ("2025-01-13", "withdrawal_management", 0),
    ("2025-01-20", "iop", 0),
    ("2025-01-20", "op", 0),
    ("2025-01-20", "php", 1),  # CW1 discharged Monday 01-20; CW2 discharged Sunday 01-19 is not active
    ("2025-01-20", "residential", 1),
    ("2025-01-20", "withdrawal_management", 0),
]

# start 2025-01-27, as_of 2025-02-05 (a Wednesday): weeks of 01-27 and 02-03.
CENSUS_AS_OF_FEB5 = [
    ("2025-01-27", "iop", 0),
    ("2025-01-27", "op", 2),  # PW1 (admitted 01-29), PW2 (01-30 to 01-31)
    ("2025-01-27", "php", 0),
    ("2025-01-27", "residential", 1),  # IK
    ("2025-01-27", "withdrawal_management", 0),
    ("2025-02-03", "iop", 1),  # IN-I1 admitted 02-03
    ("2025-02-03", "op", 1),  # PW1 (its 03-01 discharge is after as_of)
    ("2025-02-03", "php", 1),  # PW2 admitted 02-03; CW4 admitted 02-07, after as_of, not counted
    ("2025-02-03", "residential", 1),
    ("2025-02-03", "withdrawal_management", 0),
]

# Defaults: weeks 2024-12-30 (as_of - 182 days) to 2025-06-30; only the last week is written out here.
CENSUS_DEFAULT_LAST_WEEK = [
    ("2025-06-30", "iop", 6),  # open IOP on 06-30: IE, IJ, IK, IL, IN-I2, P2
    ("2025-06-30", "op", 0),
    ("2025-06-30", "php", 0),
    ("2025-06-30", "residential", 0),
    ("2025-06-30", "withdrawal_management", 0),
]

CENSUS_CASES = {
    "january": ({"start": "2025-01-06", "end": "2025-01-26"}, CENSUS_JANUARY),
    "as_of_feb5": ({"start": "2025-01-27", "as_of": "2025-02-05"}, CENSUS_AS_OF_FEB5),
}


@pytest.mark.parametrize("case", list(CENSUS_CASES))
def test_census(con, run_query, case):
    params, expected = CENSUS_CASES[case]
    df = run_query(con, "census", **params)
    assert list(df.columns) == CENSUS_COLUMNS
    assert rows(df, CENSUS_COLUMNS) == expected


def test_census_defaults(con, run_query):
    got = rows(run_query(con, "census"), CENSUS_COLUMNS)
    assert len(got) == 27 * 5  # 27 Monday weeks x 5 levels
    assert got[0][0] == "2024-12-30"
    assert got[-5:] == CENSUS_DEFAULT_LAST_WEEK
    assert got == reference_census({})


# ======================================================================================
# attendance_weekly
# rows: (week_start, track, session_type, scheduled, attended, no_show)
# ======================================================================================

ATTENDANCE_COLUMNS = [
    "week_start",
    "track",
    "session_type",
    "series",
    "scheduled",
    "attended",
    "no_show",
    "attendance_rate",
    "no_show_rate",
]

ATTENDANCE_MAY = [
    ("2025-05-05", "day", "group", 3, 3, 0),  # P1 05-05, 05-07, 05-09
    ("2025-05-05", "evening", "family", 1, 1, 0),  # IK 05-06
    ("2025-05-12", "day", "group", 4, 3, 1),  # P1 05-12, 05-14; IL 05-14; IM 05-15 no_show
    ("2025-05-12", "evening", "family", 1, 0, 1),  # IK 05-13 no_show
]
# IK 04-29 and 04-30; P1's 05-02 session is before its 05-05 admission and is left out
ATTENDANCE_APR28 = [("2025-04-28", "evening", "group", 2, 2, 0)]
ATTENDANCE_JUNE = [
    ("2025-06-23", "unknown", "family", 1, 0, 1),  # P2 06-25 no_show
    (
        "2025-06-23",
        "unknown",
        "group",
        3,
        2,
        0,
    ),  # P2 06-23, 06-24 attended, 06-27 client_cancelled; 06-26 program-cancelled left out
    ("2025-06-30", "unknown", "group", 1, 1, 0),  # P2 06-30
]

ATTENDANCE_CASES = {
    "may_5_18": ({"start": "2025-05-05", "end": "2025-05-18"}, ATTENDANCE_MAY),
    "apr_28_may_4": ({"start": "2025-04-28", "end": "2025-05-04"}, ATTENDANCE_APR28),
    "june_23_30": ({"start": "2025-06-23", "end": "2025-06-30"}, ATTENDANCE_JUNE),
}


@pytest.mark.parametrize("case", list(ATTENDANCE_CASES))
def test_attendance_weekly(con, run_query, case):
    params, expected = ATTENDANCE_CASES[case]
    df = run_query(con, "attendance_weekly", **params)
    assert list(df.columns) == ATTENDANCE_COLUMNS
    assert rows(df, ["week_start", "track", "session_type", "scheduled", "attended", "no_show"]) == expected
    for _, r in df.iterrows():
        assert r["series"] == f"{r['track']}, {r['session_type']}"
        assert r["attendance_rate"] == pytest.approx(r["attended"] / r["scheduled"])
        assert r["no_show_rate"] == pytest.approx(r["no_show"] / r["scheduled"])


def test_attendance_weekly_defaults(con, run_query):
    got = rows(
        run_query(con, "attendance_weekly"), ["week_start", "track", "session_type", "scheduled", "attended", "no_show"]
    )
    assert got == reference_attendance({})
    assert not any(r[0] == "2025-01-13" for r in got)  # CW1's family session is PHP


# ======================================================================================
# family_participation
# rows: (month, active_episodes, with_family_session)
# ======================================================================================

FAMILY_COLUMNS = ["month", "active_episodes", "with_family_session", "family_rate"]

FAMILY_DEFAULT = [
    ("2025-02-01", 1, 0),  # IN-I1
    ("2025-03-01", 5, 1),  # IA, IB, IC, IG, IH; IA family 03-25 (CW1's January family session is PHP)
    ("2025-04-01", 10, 1),  # IA, IC, ID, IE, IF, IG, II, IJ, IK, IN-I2; IG family 04-04
    ("2025-05-01", 4, 1),  # IK, IL, IM, P1 (IN-I2 only program-cancelled: not active); IK family 05-06
    ("2025-06-01", 1, 0),  # P2; its family session is a no_show
]
FAMILY_APR_MAY = [  # start 2025-04-15, end 2025-05-10: whole months April and May
    ("2025-04-01", 10, 1),
    ("2025-05-01", 4, 1),
]
FAMILY_SOUTHSIDE = [
    ("2025-03-01", 2, 0),  # IB, IH
    ("2025-04-01", 3, 0),  # ID, IF, IJ
    ("2025-05-01", 2, 0),  # IL, IM
    ("2025-06-01", 1, 0),  # P2
]

FAMILY_CASES = {
    "defaults": ({}, FAMILY_DEFAULT),
    "apr_may": ({"start": "2025-04-15", "end": "2025-05-10"}, FAMILY_APR_MAY),
    "sites_southside": ({"sites": "Southside"}, FAMILY_SOUTHSIDE),
}


@pytest.mark.parametrize("case", list(FAMILY_CASES))
def test_family_participation(con, run_query, case):
    params, expected = FAMILY_CASES[case]
    df = run_query(con, "family_participation", **params)
    assert list(df.columns) == FAMILY_COLUMNS
    assert rows(df, FAMILY_COLUMNS[:3]) == expected
    for _, r in df.iterrows():
        assert r["family_rate"] == pytest.approx(r["with_family_session"] / r["active_episodes"])


def test_family_participation_by_quarter(con, run_query):
    # an episode active in several months of a quarter counts once in it: IK (April and May)
    df = run_query(con, "family_participation", grain="quarter")
    assert rows(df, FAMILY_COLUMNS[:3]) == [
        ("2025-01-01", 6, 1),  # IN-I1 (February); IA, IB, IC, IG, IH (March); IA family
        ("2025-04-01", 14, 2),  # April's 10, then IL, IM, P1 (May; IK again) and P2 (June); IG and IK family
    ]


# ======================================================================================
# engagement_heatmap
# rows: (admit_month, week, scheduled, attended)
# ======================================================================================

HEATMAP_COLUMNS = ["admit_month", "week", "scheduled", "attended", "attendance_rate"]

HEATMAP_MARCH = [
    # IA no_show, IB no_show, IC x2 attended, IG x3 attended, IH attended
    ("2025-03-01", 1, 8, 6),
    ("2025-03-01", 2, 1, 1),  # IA day 13
    ("2025-03-01", 3, 2, 2),  # IA day 20 (family), IB day 14
    ("2025-03-01", 6, 1, 1),  # IC day 35
    ("2025-03-01", 7, 1, 1),  # IA day 47
]
HEATMAP_MAY = [
    ("2025-05-01", 1, 5, 4),  # P1 x3, IL attended, IM no_show (R1-R3 have no sessions)
    ("2025-05-01", 2, 3, 2),  # P1 x2, IL no_show
    ("2025-05-01", 3, 3, 3),  # P1 days 14, 16, 18
    ("2025-05-01", 4, 1, 1),  # P1 day 21 (after its discharge; counted as in engagement_by_week)
]
HEATMAP_DEFAULT = [
    ("2025-02-01", 1, 3, 3),  # IN-I1
    *HEATMAP_MARCH,
    ("2025-04-01", 1, 10, 10),  # ID x3, IE, IF, IJ, IK x3, IN-I2
    ("2025-04-01", 2, 2, 2),  # IK 04-29, 04-30
    ("2025-04-01", 3, 2, 2),  # II day 14, IK day 14
    ("2025-04-01", 4, 1, 0),  # IK day 21 no_show (IN-I2's week 6 is program-cancelled only: no row)
    *HEATMAP_MAY,
    ("2025-06-01", 1, 2, 2),  # P2 06-09, 06-11
    ("2025-06-01", 3, 4, 2),  # P2: 2 attended, no_show, client_cancelled (program-cancelled left out)
    ("2025-06-01", 4, 1, 1),  # P2 06-30
]

HEATMAP_CASES = {
    "defaults": ({}, HEATMAP_DEFAULT),
    "march": ({"start": "2025-03-01", "end": "2025-03-31"}, HEATMAP_MARCH),
    "may": ({"start": "2025-05-01", "end": "2025-05-31"}, HEATMAP_MAY),
    "may_max_weeks_2": ({"start": "2025-05-01", "end": "2025-05-31", "max_weeks": "2"}, HEATMAP_MAY[:2]),
}


@pytest.mark.parametrize("case", list(HEATMAP_CASES))
def test_engagement_heatmap(con, run_query, case):
    params, expected = HEATMAP_CASES[case]
    df = run_query(con, "engagement_heatmap", **params)
    assert list(df.columns) == HEATMAP_COLUMNS
    assert rows(df, HEATMAP_COLUMNS[:4]) == expected
    for _, r in df.iterrows():
        assert r["attendance_rate"] == pytest.approx(r["attended"] / r["scheduled"])


# ======================================================================================
# pathways
# rows: (source, target, transitions)
# ======================================================================================

PATHWAY_COLUMNS = ["source", "target", "transitions"]

PATHWAYS_DEFAULT = [
    ("1. iop", "2. iop", 1),  # IN: IOP -> IOP after 49 days
    ("1. op", "2. op", 1),  # CW3
    ("1. op", "2. php", 1),  # PW2's second path (its residential stay ended 91 days before the op)
    ("1. residential", "2. iop", 5),  # IG, IH, II, IJ (same-day tie: residential discharged first), IK (overlap)
    ("1. residential", "2. op", 1),  # PW1: 90-day gap continues the path
    ("1. withdrawal_management", "2. op", 1),  # PW3 (op and residential admitted the same day: op ends first)
    ("2. op", "3. residential", 1),  # PW3
    ("3. residential", "4. php", 1),  # PW3
    ("4. php", "5. op", 1),  # PW3; its sixth episode is beyond the 5-step cap
]
# (IE, IF: residential then IOP 194/195 days later -> two one-episode paths, nothing counted)

PATHWAYS_FROM_2025 = [  # paths whose first admission is on or after 2025-01-01
    ("1. iop", "2. iop", 1),  # IN
    ("1. op", "2. op", 1),  # CW3
    ("1. op", "2. php", 1),  # PW2 second path (01-30)
    ("1. residential", "2. iop", 4),  # IG, IH, II, IJ (IK's path starts 2024-09-02)
]
PATHWAYS_AS_OF_APR1 = [  # episodes admitted after 2025-04-01 are unknown
    ("1. op", "2. op", 1),
    ("1. op", "2. php", 1),
    ("1. residential", "2. iop", 2),  # IG, IH (II's IOP is 04-02; IJ, IK later)
    ("1. residential", "2. op", 1),
    ("1. withdrawal_management", "2. op", 1),
    ("2. op", "3. residential", 1),
    ("3. residential", "4. php", 1),
    ("4. php", "5. op", 1),
]
PATHWAYS_SOUTHSIDE = [  # the path's first episode at Southside; later steps at any site
    ("1. op", "2. php", 1),  # PW2
    ("1. residential", "2. iop", 2),  # IH, IJ
    ("1. withdrawal_management", "2. op", 1),  # PW3 (later episodes at Northside)
    ("2. op", "3. residential", 1),
    ("3. residential", "4. php", 1),
    ("4. php", "5. op", 1),
]

PATHWAY_CASES = {
    "defaults": ({}, PATHWAYS_DEFAULT),
    "start_2025": ({"start": "2025-01-01"}, PATHWAYS_FROM_2025),
    "as_of_apr1": ({"as_of": "2025-04-01"}, PATHWAYS_AS_OF_APR1),
    "sites_southside": ({"sites": "Southside"}, PATHWAYS_SOUTHSIDE),
}


@pytest.mark.parametrize("case", list(PATHWAY_CASES))
def test_pathways(con, run_query, case):
    params, expected = PATHWAY_CASES[case]
    df = run_query(con, "pathways", **params)
    assert list(df.columns) == PATHWAY_COLUMNS
    assert rows(df, PATHWAY_COLUMNS) == expected


# ======================================================================================
# Independent re-computation from the CSV files
# ======================================================================================


@dataclass(frozen=True)
class Ep:
    id: str
    client: str
    site: str
    level: str
    admit: date
    out: date | None
    reason: str
    track: str | None
    gender: str


@dataclass(frozen=True)
class Session:
    episode: str
    day: date
    type: str
    status: str
    minutes: int | None


def _d(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _read(table: str) -> list[dict[str, str]]:
    with open(FIXTURE / f"{table}.csv", newline="") as f:
        return list(csv.DictReader(f))


@cache
def episodes() -> tuple[Ep, ...]:
    gender = {c["client_id"]: c["gender"] for c in _read("clients")}
    return tuple(
        Ep(
            e["episode_id"],
            e["client_id"],
            e["site"],
            e["level_of_care"],
            _d(e["admit_date"]),
            _d(e["discharge_date"]),
            e["discharge_reason"],
            e["track"] or None,
            gender[e["client_id"]],
        )
        for e in _read("enrollments")
    )


@cache
def sessions() -> tuple[Session, ...]:
    return tuple(
        Session(
            s["episode_id"],
            _d(s["session_date"]),
            s["session_type"],
            s["status"],
            int(s["duration_minutes"]) if s["duration_minutes"] else None,
        )
        for s in _read("attendance")
    )


def _selected(params: dict) -> callable:
    sites = set(params["sites"].split(",")) if params.get("sites") else None
    genders = set(params["genders"].split(",")) if params.get("genders") else None
    tracks = set(params["tracks"].split(",")) if params.get("tracks") else None
    return lambda e: (
        (sites is None or e.site in sites)
        and (genders is None or e.gender in genders)
        and (tracks is None or e.track in tracks)
    )


def _window(params: dict):
    return _d(params.get("start")), _d(params.get("end"))


def _in(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


def _month(day: date) -> str:
    return day.replace(day=1).isoformat()


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _stepdown(e: Ep) -> bool:
    return any(
        o.client == e.client and o.level == "residential" and o.out is not None and 0 <= (e.admit - o.out).days <= 14
        for o in episodes()
    )


def reference_iet(params: dict) -> list[tuple]:
    as_of = _d(params.get("as_of", AS_OF))
    start, end = _window(params)
    ok = _selected(params)
    table = defaultdict(lambda: [0, 0, 0])
    for e in episodes():
        if e.level != "iop" or not ok(e) or not _in(e.admit, start, end) or (as_of - e.admit).days < 47:
            continue
        lookback = {e.admit - timedelta(days=k) for k in range(1, 195)}
        recent = False
        for o in episodes():
            if o.client != e.client or o.id == e.id or o.level not in ("iop", "residential"):
                continue
            stay = (o.out or e.admit) - o.admit
            if any(o.admit + timedelta(days=k) in lookback for k in range(stay.days + 1)):
                recent = True
        if _stepdown(e):
            stratum = "stepdown"
        elif not recent:
            stratum = "new"
        else:
            continue
        days = sorted({s.day for s in sessions() if s.episode == e.id and s.status == "attended" and s.day >= e.admit})
        first = next((x for x in days if (x - e.admit).days <= 13), None)
        engaged = first is not None and sum(1 <= (x - first).days <= 34 for x in days) >= 2
        row = table[(stratum, _month(e.admit))]
        row[0] += 1
        row[1] += first is not None
        row[2] += engaged
    return [(s, m, *v) for (s, m), v in sorted(table.items())]


def reference_dose(params: dict) -> list[tuple]:
    as_of = _d(params.get("as_of", AS_OF))
    start, end = _window(params)
    ok = _selected(params)
    table = defaultdict(lambda: [0, 0, 0])
    for e in episodes():
        if e.level != "iop" or not ok(e) or not _in(e.admit, start, end) or e.admit > as_of:
            continue
        last = e.out if e.out is not None and e.out <= as_of else as_of
        for week in range(1, (last - e.admit).days // 7 + 2):
            done = [
                s
                for s in sessions()
                if s.episode == e.id
                and s.status == "attended"
                and (s.day - e.admit).days >= 0
                and (s.day - e.admit).days // 7 + 1 == week
            ]
            three = len(done) >= 3
            if any(s.minutes is None for s in done):
                nine = three
            else:
                nine = sum(s.minutes for s in done) >= 9 * 60
            row = table[e.track or "unknown"]
            row[0] += 1
            row[1] += three
            row[2] += nine
    return [(t, *v) for t, v in sorted(table.items())]


def reference_retention_spells(params: dict) -> dict[tuple, list[tuple[int, int]]]:
    """(entry_route, track) -> [(duration, 1 if dropout else 0)]."""
    as_of = _d(params.get("as_of", AS_OF))
    start, end = _window(params)
    ok = _selected(params)
    groups = defaultdict(list)
    for e in episodes():
        if e.level != "iop" or not ok(e) or not _in(e.admit, start, end) or e.admit > as_of:
            continue
        if e.out is not None and e.out <= as_of:
            spell = ((e.out - e.admit).days, int(e.reason not in ("completed", "transferred")))
        else:
            spell = ((as_of - e.admit).days, 0)
        groups[("stepdown" if _stepdown(e) else "direct", e.track or "unknown")].append(spell)
    return dict(groups)


def reference_retention(params: dict) -> dict[tuple, tuple[int, dict]]:
    max_day = int(params.get("max_day", 120))
    out = {}
    for key, spells in reference_retention_spells(params).items():
        last = min(max(d for d, _ in spells), max_day)
        survival, points = 1.0, {}
        for day in range(last + 1):
            at_risk = sum(d >= day for d, _ in spells)
            dropouts = sum(d == day and ev for d, ev in spells)
            survival *= 1 - dropouts / at_risk
            points[day] = (at_risk, dropouts, survival)
        out[key] = (last, points)
    return out


def reference_census(params: dict) -> list[tuple]:
    as_of = _d(params.get("as_of", AS_OF))
    start, end = _window(params)
    ok = _selected(params)
    known = [e for e in episodes() if ok(e) and e.admit <= as_of]
    levels = sorted({e.level for e in known})
    week, last = _monday(start or as_of - timedelta(days=182)), _monday(min(end or as_of, as_of))
    out = []
    while week <= last:
        for level in levels:
            clients = {
                e.client
                for e in known
                if e.level == level and e.admit <= week + timedelta(days=6) and (e.out is None or e.out >= week)
            }
            out.append((week.isoformat(), level, len(clients)))
        week += timedelta(days=7)
    return out


def _iop_sessions(params: dict):
    """(episode, session) for scheduled sessions of selected IOP episodes on or after admission."""
    ok = _selected(params)
    iop = {e.id: e for e in episodes() if e.level == "iop" and ok(e)}
    for s in sessions():
        e = iop.get(s.episode)
        if e is not None and s.status != "program_cancelled" and s.day >= e.admit:
            yield e, s


def reference_attendance(params: dict) -> list[tuple]:
    start, end = _window(params)
    table = defaultdict(lambda: [0, 0, 0])
    for e, s in _iop_sessions(params):
        if _in(s.day, start, end):
            row = table[(_monday(s.day).isoformat(), e.track or "unknown", s.type)]
            row[0] += 1
            row[1] += s.status == "attended"
            row[2] += s.status == "no_show"
    return [(*k, *v) for k, v in sorted(table.items())]


def reference_family(params: dict) -> list[tuple]:
    start, end = _window(params)
    active, family = defaultdict(set), defaultdict(set)
    for e, s in _iop_sessions(params):
        month = _month(s.day)
        if (start and month < _month(start)) or (end and month > _month(end)):
            continue
        active[month].add(e.id)
        if s.type == "family" and s.status == "attended":
            family[month].add(e.id)
    return [(m, len(active[m]), len(family[m])) for m in sorted(active)]


def reference_heatmap(params: dict) -> list[tuple]:
    start, end = _window(params)
    max_weeks = int(params.get("max_weeks", 12))
    table = defaultdict(lambda: [0, 0])
    for e, s in _iop_sessions(params):
        week = (s.day - e.admit).days // 7 + 1
        if _in(e.admit, start, end) and week <= max_weeks:
            row = table[(_month(e.admit), week)]
            row[0] += 1
            row[1] += s.status == "attended"
    return [(*k, *v) for k, v in sorted(table.items())]


def reference_pathways(params: dict) -> list[tuple]:
    as_of = _d(params.get("as_of", AS_OF))
    start, end = _window(params)
    ok = _selected(params)
    by_client = defaultdict(list)
    for e in episodes():
        if e.admit <= as_of:
            by_client[e.client].append(e)
    counts = defaultdict(int)
    for eps in by_client.values():

        def seen_out(e):
            return e.out if e.out is not None and e.out <= as_of else None

        eps.sort(key=lambda e: (e.admit, seen_out(e) or date.max, e.id))
        paths = [[eps[0]]]
        for prev, e in zip(eps, eps[1:]):
            if seen_out(prev) is not None and (e.admit - seen_out(prev)).days > 90:
                paths.append([e])
            else:
                paths[-1].append(e)
        for path in paths:
            if not ok(path[0]) or not _in(path[0].admit, start, end):
                continue
            for k in range(1, min(len(path), 5)):
                counts[(f"{k}. {path[k - 1].level}", f"{k + 1}. {path[k].level}")] += 1
    return [(*k, v) for k, v in sorted(counts.items())]


# The re-computation reproduces every literal table ------------------------------------


@pytest.mark.parametrize("case", list(IET_CASES))
def test_reference_iet_matches_literal(case):
    params, expected = IET_CASES[case]
    assert reference_iet(params) == expected


@pytest.mark.parametrize("case", list(DOSE_CASES))
def test_reference_dose_matches_literal(case):
    params, expected = DOSE_CASES[case]
    assert reference_dose(params) == expected


@pytest.mark.parametrize("case", list(RETENTION_CASES))
def test_reference_retention_matches_literal(case):
    params, expected = RETENTION_CASES[case]
    got = reference_retention(params)
    assert sorted(got) == sorted(expected)
    for key, (last_day, points) in expected.items():
        assert got[key][0] == last_day, key
        for day, (at_risk, dropouts, retained) in points.items():
            r = got[key][1][day]
            assert r[:2] == (at_risk, dropouts) and math.isclose(r[2], retained, abs_tol=1e-12), (key, day)


@pytest.mark.parametrize("case", list(CENSUS_CASES))
def test_reference_census_matches_literal(case):
    params, expected = CENSUS_CASES[case]
    assert reference_census(params) == expected


def test_reference_census_default_last_week():
    assert reference_census({})[-5:] == CENSUS_DEFAULT_LAST_WEEK


@pytest.mark.parametrize("case", list(ATTENDANCE_CASES))
def test_reference_attendance_matches_literal(case):
    params, expected = ATTENDANCE_CASES[case]
    assert reference_attendance(params) == expected


@pytest.mark.parametrize("case", list(FAMILY_CASES))
def test_reference_family_matches_literal(case):
    params, expected = FAMILY_CASES[case]
    assert reference_family(params) == expected


@pytest.mark.parametrize("case", list(HEATMAP_CASES))
def test_reference_heatmap_matches_literal(case):
    params, expected = HEATMAP_CASES[case]
    assert reference_heatmap(params) == expected


@pytest.mark.parametrize("case", list(PATHWAY_CASES))
def test_reference_pathways_matches_literal(case):
    params, expected = PATHWAY_CASES[case]
    assert reference_pathways(params) == expected


# Wider cases: query against the re-computation directly -------------------------------

WIDE_CASES = [
    ("iop_dose", {"as_of": "2025-05-18"}),
    ("iop_dose", {"sites": "Southside", "genders": "male"}),
    ("iop_initiation_engagement", {"tracks": "day"}),
    ("census", {"sites": "Southside"}),
    ("census", {"as_of": "2025-03-20", "start": "2024-10-01"}),
    ("attendance_weekly", {"tracks": "day,evening"}),
    ("family_participation", {"genders": "male"}),
    ("engagement_heatmap", {"max_weeks": "3", "sites": "Northside"}),
    ("pathways", {"genders": "male", "end": "2025-03-01"}),
]
REFERENCES = {
    "iop_dose": (reference_dose, DOSE_COLUMNS[:4]),
    "iop_initiation_engagement": (reference_iet, IET_COLUMNS[:5]),
    "census": (reference_census, CENSUS_COLUMNS),
    "attendance_weekly": (
        reference_attendance,
        ["week_start", "track", "session_type", "scheduled", "attended", "no_show"],
    ),
    "family_participation": (reference_family, FAMILY_COLUMNS[:3]),
    "engagement_heatmap": (reference_heatmap, HEATMAP_COLUMNS[:4]),
    "pathways": (reference_pathways, PATHWAY_COLUMNS),
}


@pytest.mark.parametrize("name,params", WIDE_CASES, ids=[f"{n}-{'-'.join(p)}" for n, p in WIDE_CASES])
def test_query_matches_reference(con, run_query, name, params):
    reference, columns = REFERENCES[name]
    expected = reference(params)
    assert expected, "case selects nothing"
    assert rows(run_query(con, name, **params), columns) == expected


@pytest.mark.parametrize("params", [{}, {"as_of": "2025-05-18"}, {"sites": "Northside", "max_day": "50"}])
def test_retention_full_grid_matches_reference(con, run_query, params):
    df = run_query(con, "iop_retention", **params)
    expected = reference_retention(params)
    got = {key: g for key, g in df.groupby(["entry_route", "track"])}
    assert sorted(got) == sorted(expected)
    for key, (last_day, points) in expected.items():
        g = got[key]
        assert g["day"].tolist() == list(range(last_day + 1))
        for _, r in g.iterrows():
            at_risk, dropouts, retained = points[r["day"]]
            assert (r["at_risk"], r["dropouts"]) == (at_risk, dropouts), (key, r["day"])
            assert r["retained"] == pytest.approx(retained, abs=1e-12), (key, r["day"])


def test_fixture_respects_the_contract():
    clients = {c["client_id"] for c in _read("clients")}
    eps = {e.id: e for e in episodes()}
    limit = date.fromisoformat(AS_OF)
    assert len(eps) == len(_read("enrollments"))
    for e in eps.values():
        assert e.client in clients
        assert e.admit <= limit and (e.out is None or e.admit <= e.out <= limit)
        assert bool(e.reason) == (e.out is not None)
    ids = [s["session_id"] for s in _read("attendance")]
    assert len(ids) == len(set(ids))
    for s in sessions():
        assert s.episode in eps and s.day <= limit
