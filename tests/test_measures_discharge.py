"""Discharge measures on one tiny hand-made fixture.

The fixture (tests/fixtures/measures_discharge, described client by client in its
README.md) is loaded once with as_of 2025-06-30 by the real loader. Every expected
number below is written out literally with the clients that make it up; a small
independent pure-Python re-computation at the bottom of this module derives the same
tables from the CSV files, so each number is checked twice.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

FIXTURE_NAME = "measures_discharge"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / FIXTURE_NAME
DATA_THROUGH = "2025-06-30"
Z = 1.959963984540054

COLUMNS = {
    "fui_followup": ["month", "eligible_discharges", "followed_up", "followup_rate", "ci_low", "ci_high"],
    "time_to_stepdown": [
        "reason_group",
        "day",
        "at_risk",
        "stepped_on_day",
        "cumulative_share",
        "stepped_by_max_day",
        "median_days",
    ],
    "referral_conversion": [
        "site",
        "to_level_of_care",
        "referred",
        "admitted",
        "attended_14d",
        "admitted_rate",
        "attended_rate",
    ],
    "referral_not_arrived": ["month", "site", "referred", "not_arrived", "not_arrived_rate"],
    "readmission": [
        "month",
        "level_of_care",
        "discharges_30",
        "readmitted_30",
        "readmission_rate_30",
        "discharges_90",
        "readmitted_90",
        "readmission_rate_90",
    ],
    "discharge_outcomes": [
        "month",
        "level_of_care",
        "discharges",
        "completed",
        "left_against_advice",
        "administrative",
        "transferred",
        "other",
        "positive",
        "positive_rate",
        "completion_rate",
    ],
    "length_of_stay": ["level_of_care", "episodes", "median_days", "p25_days", "p75_days"],
}


# ======================================================================================
# fui_followup rows: (month, eligible_discharges, followed_up)
# ======================================================================================

# window_days=30 (default), as_of 2025-06-30: windows complete for discharges up to 05-31.
FUI_W30 = [
    # eligible: F01, F02, F07-R1, A02, A04 (F07-R2 dropped: 20 days after kept R1)
    # followed: F01 (OP day 1). F02 only day 0; F07-R1's day-7 session is in residential R2; A02, A04 none
    ("2025-01-01", 5, 1),
    # eligible: F03, F04, F05-W1, F07-R3; followed: F03 (PHP day 30), F07-R3 (OP day 6)
    # not: F04 (IOP day 31), F05-W1 (its only later session is in withdrawal management)
    ("2025-02-01", 4, 2),
    # eligible: F08-R1, X01, X02 (F06 deceased; F05-W2 dropped: only 30 days after W1)
    # followed: X01 (IOP day 14), X02 (IOP day 15); F08-R1's first session is day 38
    ("2025-03-01", 3, 2),
    # eligible: F08-R2 (31 days after R1: kept), F09-R1, X03, X06 (F09-R2 dropped: 25 days after R1)
    # followed: F08-R2 (IOP day 7), F09-R1 (OP day 27), X06 (OP day 5); X03 none
    ("2025-04-01", 4, 3),
    # eligible: F10-W, F12, A07 (F10-R dropped: withdrawal management admitted the next day)
    # followed: F10-W (IOP day 2), F12 (IOP day 8); A07 none
    ("2025-05-01", 3, 2),
    # June: no discharge has a complete 30-day window
]

# window_days=7: windows complete for discharges up to 06-23.
FUI_W7 = [
    # eligible as at 30 days; followed: F01 (day 1)
    ("2025-01-01", 5, 1),
    # followed: F07-R3 (day 6); F03 (day 30), F04 (day 31) are outside 7 days
    ("2025-02-01", 4, 1),
    # followed: none (X01 day 14, X02 day 15 after a day-10 no_show, F08-R1 day 38)
    ("2025-03-01", 3, 0),
    # followed: F08-R2 (day 7, the last day), X06 (day 5); not F09-R1 (day 27), X03
    ("2025-04-01", 4, 2),
    # followed: F10-W (day 2); F12's day 8 is out
    ("2025-05-01", 3, 1),
    # eligible: F11, T01, T04, T05, T06, T08, T09 (incarcerated is not an FUI exclusion)
    #           (X05 06-24, T02 06-25, T03 06-27, T07 06-26: window runs past 06-30)
    # followed: F11 (PHP day 2), T04 (IOP day 5; day-2 no_show), T08 (IOP day 2)
    # not: T01 (IOP day 0 only), T05, T09 (none), T06 (IOP day 8)
    ("2025-06-01", 7, 3),
]

# sites=Southside (site of the index episode), window 30.
FUI_SOUTHSIDE = [
    ("2025-01-01", 1, 0),  # A04
    ("2025-02-01", 2, 1),  # F03 (followed), F04
    ("2025-03-01", 1, 0),  # F08-R1
    # F08-R2 (followed), X06 (followed), X03. F09-R2 is a Southside discharge followed on day 2,
    # but the 31-day rule dropped it (Northside F09-R1) before the site filter: 3 / 2, not 4 / 3
    ("2025-04-01", 3, 2),
    ("2025-05-01", 1, 1),  # F12 (followed)
]

# start=2025-04-10, window 30.
FUI_START_APR10 = [
    # X06 (followed); F09-R2 (04-30) stays dropped: the rule saw F09-R1 (04-05) before the start filter
    ("2025-04-01", 1, 1),
    ("2025-05-01", 3, 2),  # F10-W, F12 (followed), A07
]

# as_of=2025-03-31, window 30: discharges up to 03-01 have complete windows.
FUI_AS_OF_MARCH = [
    ("2025-01-01", 5, 1),  # as in the default table
    ("2025-02-01", 4, 2),  # as in the default table; the last window (F05-W1) ends 03-22
    ("2025-03-01", 1, 0),  # F08-R1: 03-01 + 30 = 03-31 is complete; X01, X02 are not
]

# genders=female, window 30.
FUI_FEMALE = [
    ("2025-01-01", 4, 1),  # F01 (followed), F07-R1, A02, A04
    ("2025-02-01", 3, 2),  # F03 (followed), F07-R3 (followed), F05-W1
    ("2025-03-01", 1, 1),  # X01 (followed)
    ("2025-04-01", 2, 1),  # F09-R1 (followed), X03
]

FUI_CASES = {
    "defaults": ({}, FUI_W30),
    "window_30": ({"window_days": "30"}, FUI_W30),
    "window_7": ({"window_days": "7"}, FUI_W7),
    "sites_southside_after_31_day_rule": ({"sites": "Southside"}, FUI_SOUTHSIDE),
    "start_after_31_day_rule": ({"start": "2025-04-10"}, FUI_START_APR10),
    "as_of_march": ({"as_of": "2025-03-31"}, FUI_AS_OF_MARCH),
    "genders_female": ({"genders": "female"}, FUI_FEMALE),
    # 31-day chain 0 / 20 / 40 (F07): the middle discharge is dropped ...
    "chain_0_20_40_middle_dropped": ({"start": "2025-01-25", "end": "2025-01-25", "sites": "Northside"}, []),
    # ... and the third is kept: 40 days after kept R1, although only 20 after R2 (followed day 6)
    "chain_0_20_40_third_kept": ({"start": "2025-02-14", "end": "2025-02-14"}, [("2025-02-01", 1, 1)]),
    # 31-day chain 0 / 30 (F05): the second is dropped (X02, the other 03-22 discharge, is male)
    "chain_0_30_second_dropped": ({"start": "2025-03-22", "end": "2025-03-22", "genders": "female"}, []),
    # 31-day chain 0 / 31 (F08): the second is kept (X03, the other 04-01 discharge, is female)
    "chain_0_31_second_kept": ({"start": "2025-04-01", "end": "2025-04-01", "genders": "male"}, [("2025-04-01", 1, 1)]),
    # day 1 is the first follow-up day: F01 (OP day 1) followed even with a 1-day window; A02 not
    "day_1_counts": ({"window_days": "1", "start": "2025-01-10", "end": "2025-01-10"}, [("2025-01-01", 2, 1)]),
    # F02: the only session is on the discharge day
    "discharge_day_not_counted": ({"start": "2025-01-15", "end": "2025-01-15"}, [("2025-01-01", 1, 0)]),
    # F03: PHP session on day 30 counts in a 30-day window, not in a 29-day one
    "window_last_day_30": ({"start": "2025-02-03", "end": "2025-02-03"}, [("2025-02-01", 1, 1)]),
    "window_last_day_29": ({"window_days": "29", "start": "2025-02-03", "end": "2025-02-03"}, [("2025-02-01", 1, 0)]),
    # F05-W1: its only later session is in a withdrawal management episode
    "withdrawal_management_never_counts": ({"start": "2025-02-20", "end": "2025-02-20"}, [("2025-02-01", 1, 0)]),
    # F06: deceased, the only 03-10 discharge
    "deceased_excluded": ({"start": "2025-03-10", "end": "2025-03-10"}, []),
    # F10: residential dropped as a transfer, the withdrawal management discharge counts (IOP day 2)
    "transfer_dropped": ({"start": "2025-05-01", "end": "2025-05-01"}, []),
    "transfer_chain_last_counts": ({"start": "2025-05-06", "end": "2025-05-06"}, [("2025-05-01", 1, 1)]),
}


# ======================================================================================
# time_to_stepdown rows: (reason_group, day, at_risk, stepped_on_day, cumulative_share)
# and per group: {reason_group: (stepped_by_max_day, median_days)}
# ======================================================================================

# sites=Eastside, max_day=10, as_of 2025-06-30.
# completed: T01 (f 10, day 0), T02 (f 5, day 3), T03 (f 3, none), T04 (f 20, day 5), T05 (f 29, none)
# left_against_advice: T06 (f 29, day 8), T07 (f 4, day 1); other: T08 (f 15, day 2); T09 incarcerated
TTS_EAST = [
    ("completed", 0, 5, 1, 1 / 5),  # T01
    ("completed", 1, 4, 0, 1 / 5),
    ("completed", 2, 4, 0, 1 / 5),  # T04's day-2 no_show is not a step-down
    ("completed", 3, 4, 1, 1 - (4 / 5) * (3 / 4)),  # T02: 2/5
    ("completed", 4, 2, 0, 2 / 5),  # T03 censored after day 3, T02 stepped: T04, T05 left
    ("completed", 5, 2, 1, 1 - (4 / 5) * (3 / 4) * (1 / 2)),  # T04: 7/10
    ("completed", 6, 1, 0, 7 / 10),  # T05 only
    ("completed", 7, 1, 0, 7 / 10),
    ("completed", 8, 1, 0, 7 / 10),
    ("completed", 9, 1, 0, 7 / 10),
    ("completed", 10, 1, 0, 7 / 10),
    ("left_against_advice", 0, 2, 0, 0.0),
    ("left_against_advice", 1, 2, 1, 1 / 2),  # T07
    ("left_against_advice", 2, 1, 0, 1 / 2),  # T06 only
    ("left_against_advice", 3, 1, 0, 1 / 2),
    ("left_against_advice", 4, 1, 0, 1 / 2),
    ("left_against_advice", 5, 1, 0, 1 / 2),
    ("left_against_advice", 6, 1, 0, 1 / 2),
    ("left_against_advice", 7, 1, 0, 1 / 2),
    ("left_against_advice", 8, 1, 1, 1.0),  # T06; nobody at risk from day 9: no more rows
    ("other", 0, 1, 0, 0.0),  # T08
    ("other", 1, 1, 0, 0.0),
    ("other", 2, 1, 1, 1.0),
]
TTS_EAST_GROUPS = {
    "completed": (3, 3.0),  # days 0, 3, 5
    "left_against_advice": (2, 4.5),  # days 1, 8
    "other": (1, 2.0),  # day 2
}

# sites=Eastside, max_day=10, as_of=2025-06-05: only T05 and T06 (06-01, f 4) are discharged by then
# (T09 incarcerated); T06's day-8 session is after as_of, so T06 is censored at day 4, not an event.
TTS_EAST_CENSORED = [
    ("completed", 0, 1, 0, 0.0),  # T05
    ("completed", 1, 1, 0, 0.0),
    ("completed", 2, 1, 0, 0.0),
    ("completed", 3, 1, 0, 0.0),
    ("completed", 4, 1, 0, 0.0),
    ("left_against_advice", 0, 1, 0, 0.0),  # T06
    ("left_against_advice", 1, 1, 0, 0.0),
    ("left_against_advice", 2, 1, 0, 0.0),
    ("left_against_advice", 3, 1, 0, 0.0),
    ("left_against_advice", 4, 1, 0, 0.0),
]
TTS_EAST_CENSORED_GROUPS = {"completed": (0, None), "left_against_advice": (0, None)}

# sites=Eastside, start=2025-06-20, max_day=5: T01 (day 0), T02 (f 5, day 3), T03 (f 3, none); T07 (f 4, day 1).
TTS_EAST_LATE = [
    ("completed", 0, 3, 1, 1 / 3),  # T01
    ("completed", 1, 2, 0, 1 / 3),
    ("completed", 2, 2, 0, 1 / 3),
    ("completed", 3, 2, 1, 1 - (2 / 3) * (1 / 2)),  # T02, with T03 still at risk on its last day: 2/3
    ("left_against_advice", 0, 1, 0, 0.0),  # T07
    ("left_against_advice", 1, 1, 1, 1.0),
]
TTS_EAST_LATE_GROUPS = {"completed": (2, 1.5), "left_against_advice": (1, 1.0)}

# all sites, max_day=3. completed (23): F01, F02 (day 0), F03, F07-R1, F07-R3, F08-R1 (day 38), F08-R2 (day 7),
# F09-R1, F09-R2, F11, F12 (day 8), T01 (day 0), T02 (day 3), T03 (f 3), T04 (day 5), T05, X01 (day 14),
# X02 (day 15), X05 (f 6), X06, A02, A04, A07. (F06 deceased, F10-R transfer, T09 incarcerated excluded.)
# left_against_advice (5): F04 (day 31), F07-R2, X03, T06 (day 8), T07 (day 1). other: T08 (day 2).
TTS_ALL = [
    ("completed", 0, 23, 2, 2 / 23),  # F02, T01
    ("completed", 1, 21, 0, 2 / 23),
    ("completed", 2, 21, 0, 2 / 23),
    ("completed", 3, 21, 1, 1 - (21 / 23) * (20 / 21)),  # T02: 3/23
    ("left_against_advice", 0, 5, 0, 0.0),
    ("left_against_advice", 1, 5, 1, 1 / 5),  # T07
    ("left_against_advice", 2, 4, 0, 1 / 5),
    ("left_against_advice", 3, 4, 0, 1 / 5),
    ("other", 0, 1, 0, 0.0),
    ("other", 1, 1, 0, 0.0),
    ("other", 2, 1, 1, 1.0),  # T08
]
TTS_ALL_GROUPS = {
    "completed": (3, 0.0),  # days 0, 0, 3
    "left_against_advice": (1, 1.0),
    "other": (1, 2.0),
}

TTS_CASES = {
    "eastside": ({"sites": "Eastside", "max_day": "10"}, TTS_EAST, TTS_EAST_GROUPS),
    "eastside_censored_by_as_of": (
        {"sites": "Eastside", "max_day": "10", "as_of": "2025-06-05"},
        TTS_EAST_CENSORED,
        TTS_EAST_CENSORED_GROUPS,
    ),
    "eastside_start": (
        {"sites": "Eastside", "max_day": "5", "start": "2025-06-20"},
        TTS_EAST_LATE,
        TTS_EAST_LATE_GROUPS,
    ),
    "all_sites": ({"max_day": "3"}, TTS_ALL, TTS_ALL_GROUPS),
}


# ======================================================================================
# referral_conversion rows: (site, to_level_of_care, referred, admitted, attended_14d)
# ======================================================================================

# as_of 2025-06-30: referrals up to 06-16 (T-X05 06-24 and T-T01 06-20 windows incomplete).
CONVERSION_ALL = [
    ("Northside", "iop", 2, 2, 1),  # T-X01 (attended day 14), T-X02 (day 15)
    ("Northside", "residential", 1, 1, 0),  # T-A06: admitted day 91
    ("Northside", "withdrawal_management", 1, 1, 1),  # T-A02: admitted day 2 (24-hour level)
    ("Southside", "op", 2, 1, 1),  # T-X03 never arrived, T-X04 attended day 0
    ("Southside", "php", 1, 1, 0),  # T-X06: program-cancelled only; the OP session is another episode
]

# as_of=2025-04-30: referrals up to 04-16.
CONVERSION_AS_OF_APRIL = [
    ("Northside", "iop", 2, 2, 1),  # as above (admitted 03-25, 03-30)
    ("Northside", "residential", 1, 0, 0),  # T-A06: E-A06-R admitted 05-07, after as_of
    ("Northside", "withdrawal_management", 1, 1, 1),  # T-A02
    ("Southside", "op", 2, 1, 1),  # T-X03, T-X04 (T-X06 04-20: window incomplete)
]

CONVERSION_SOUTHSIDE = [
    ("Southside", "op", 2, 1, 1),
    ("Southside", "php", 1, 1, 0),
]

CONVERSION_CASES = {
    "defaults": ({}, CONVERSION_ALL),
    "as_of_april": ({"as_of": "2025-04-30"}, CONVERSION_AS_OF_APRIL),
    "sites_southside": ({"sites": "Southside"}, CONVERSION_SOUTHSIDE),
    # T-X02 (03-22), T-X03 (04-01): both bounds inclusive
    "start_end": (
        {"start": "2025-03-21", "end": "2025-04-01"},
        [("Northside", "iop", 1, 1, 0), ("Southside", "op", 1, 0, 0)],
    ),
    "attended_day_14": ({"start": "2025-03-20", "end": "2025-03-20"}, [("Northside", "iop", 1, 1, 1)]),  # T-X01
    "attended_day_15": ({"start": "2025-03-22", "end": "2025-03-22"}, [("Northside", "iop", 1, 1, 0)]),  # T-X02
}


# ======================================================================================
# referral_not_arrived rows: (month, site, referred, not_arrived)
# ======================================================================================

NOT_ARRIVED_ALL = [
    ("2025-01-01", "Northside", 1, 0),  # T-A02
    ("2025-02-01", "Northside", 1, 0),  # T-A06 (arrived 05-07)
    ("2025-03-01", "Northside", 2, 0),  # T-X01, T-X02
    ("2025-04-01", "Southside", 3, 1),  # T-X03 (never arrived), T-X04, T-X06
    ("2025-06-01", "Eastside", 1, 0),  # T-T01
    ("2025-06-01", "Northside", 1, 1),  # T-X05 (never arrived)
]

NOT_ARRIVED_CASES = {
    "defaults": ({}, NOT_ARRIVED_ALL),
    # as_of=2025-03-25: T-A06's episode starts 05-07 and T-X02's 03-30, both after as_of; T-X01's on 03-25 counts
    "as_of_march": (
        {"as_of": "2025-03-25"},
        [
            ("2025-01-01", "Northside", 1, 0),
            ("2025-02-01", "Northside", 1, 1),
            ("2025-03-01", "Northside", 2, 1),
        ],
    ),
    "sites_southside": ({"sites": "Southside"}, [("2025-04-01", "Southside", 3, 1)]),
}


# ======================================================================================
# readmission rows: (month, level_of_care, discharges_30, readmitted_30, discharges_90, readmitted_90)
# ======================================================================================

# as_of 2025-06-30: 30-day windows complete up to 05-31, 90-day up to 04-01.
READMISSION_ALL = [
    # F01, F02, F07-R1 (R2 day 5), F07-R2 (R3 day 7), A02 (withdrawal management day 2), A04 (day 31)
    ("2025-01-01", "residential", 6, 3, 6, 4),
    # A03 (residential day 30); A01 dropped (residential the next day is a transfer)
    ("2025-01-01", "iop", 1, 1, 1, 1),
    ("2025-02-01", "residential", 3, 0, 3, 0),  # F03, F04, F07-R3
    ("2025-02-01", "iop", 2, 0, 2, 1),  # A05 (day 90), A06 (day 91); A09 deceased
    ("2025-03-01", "residential", 3, 1, 3, 1),  # F08-R1 (R2 day 9), X01, X02; F06 deceased
    # 30: F08-R2, F09-R1 (R2 day 10, at another site), F09-R2, X03, X06; 90 complete only for 04-01: F08-R2, X03
    ("2025-04-01", "residential", 5, 1, 2, 0),
    ("2025-04-01", "iop", 1, 0, 0, 0),  # X04
    ("2025-05-01", "residential", 2, 0, 0, 0),  # F12, A07 (day 36); F10-R transfer
    # June: no complete 30-day window (A08, F11, T01-T09, X05)
]

# as_of=2025-04-30: 30-day windows complete up to 03-31, 90-day up to 01-30.
READMISSION_AS_OF_APRIL = [
    ("2025-01-01", "residential", 6, 3, 6, 4),
    ("2025-01-01", "iop", 1, 1, 1, 1),
    ("2025-02-01", "residential", 3, 0, 0, 0),
    ("2025-02-01", "iop", 2, 0, 0, 0),
    ("2025-03-01", "residential", 3, 1, 0, 0),
]

READMISSION_SOUTHSIDE = [
    ("2025-01-01", "residential", 1, 0, 1, 1),  # A04
    ("2025-02-01", "residential", 2, 0, 2, 0),  # F03, F04
    ("2025-02-01", "iop", 1, 0, 1, 1),  # A05
    ("2025-03-01", "residential", 1, 1, 1, 1),  # F08-R1
    ("2025-04-01", "residential", 4, 0, 2, 0),  # F08-R2, F09-R2, X03, X06 (90: F08-R2, X03)
    ("2025-04-01", "iop", 1, 0, 0, 0),  # X04
    ("2025-05-01", "residential", 1, 0, 0, 0),  # F12
]

READMISSION_CASES = {
    "defaults": ({}, READMISSION_ALL),
    "as_of_april": ({"as_of": "2025-04-30"}, READMISSION_AS_OF_APRIL),
    "sites_southside": ({"sites": "Southside"}, READMISSION_SOUTHSIDE),
    "day_1_is_a_transfer": ({"start": "2025-01-31", "end": "2025-01-31"}, []),  # A01
    "day_2": ({"start": "2025-01-10", "end": "2025-01-10"}, [("2025-01-01", "residential", 2, 1, 2, 1)]),  # A02; F01
    "day_30": ({"start": "2025-01-20", "end": "2025-01-20"}, [("2025-01-01", "iop", 1, 1, 1, 1)]),  # A03
    "day_31": (
        {"start": "2025-01-25", "end": "2025-01-25", "sites": "Southside"},
        [("2025-01-01", "residential", 1, 0, 1, 1)],
    ),  # A04
    "day_90": ({"start": "2025-02-01", "end": "2025-02-01"}, [("2025-02-01", "iop", 1, 0, 1, 1)]),  # A05
    "day_91": ({"start": "2025-02-05", "end": "2025-02-05"}, [("2025-02-01", "iop", 1, 0, 1, 0)]),  # A06
    # A09 (IOP, deceased) and F04 (residential) are both discharged 02-10: only F04 is counted
    "deceased_excluded": ({"start": "2025-02-10", "end": "2025-02-10"}, [("2025-02-01", "residential", 1, 0, 1, 0)]),
    # May onwards: F12, A07 (90 incomplete); June discharges have no complete window at all
    "incomplete_windows": ({"start": "2025-05-01"}, [("2025-05-01", "residential", 2, 0, 0, 0)]),
}


# ======================================================================================
# discharge_outcomes rows:
# (month, level_of_care, discharges, completed, left_against_advice, administrative, transferred, other, positive)
# ======================================================================================

OUTCOMES_ALL = [
    ("2025-01-01", "residential", 6, 5, 1, 0, 0, 0, 5),  # F01, F02, F07-R1, A02, A04 completed; F07-R2 LAA
    ("2025-01-01", "php", 1, 1, 0, 0, 0, 0, 1),  # A10
    ("2025-01-01", "iop", 2, 2, 0, 0, 0, 0, 2),  # A01, A03
    ("2025-02-01", "withdrawal_management", 1, 1, 0, 0, 0, 0, 1),  # F05-W1
    ("2025-02-01", "residential", 3, 2, 1, 0, 0, 0, 2),  # F03, F07-R3; F04 LAA
    ("2025-02-01", "iop", 3, 1, 1, 0, 0, 1, 1),  # A05; A06 LAA; A09 deceased -> other
    ("2025-03-01", "withdrawal_management", 1, 1, 0, 0, 0, 0, 1),  # F05-W2
    ("2025-03-01", "residential", 4, 3, 0, 0, 0, 1, 3),  # F08-R1, X01, X02; F06 deceased -> other
    ("2025-03-01", "op", 3, 1, 0, 1, 0, 1, 1),  # L01 completed, L03 administrative, L02 other
    ("2025-04-01", "residential", 5, 4, 1, 0, 0, 0, 4),  # F08-R2, F09-R1, F09-R2, X06; X03 LAA
    ("2025-04-01", "iop", 1, 1, 0, 0, 0, 0, 1),  # X04
    ("2025-04-01", "op", 1, 0, 1, 0, 0, 0, 0),  # L04
    ("2025-05-01", "withdrawal_management", 1, 1, 0, 0, 0, 0, 1),  # F10-W
    ("2025-05-01", "residential", 3, 2, 0, 0, 1, 0, 3),  # F12, A07; F10-R transferred (positive)
    # F11, T01-T05, X05 completed; T06, T07 LAA; T08 administrative; T09 incarcerated -> other
    ("2025-06-01", "residential", 11, 7, 2, 1, 0, 1, 7),
    ("2025-06-01", "iop", 1, 1, 0, 0, 0, 0, 1),  # A08
]

OUTCOMES_CASES = {
    "defaults": ({}, OUTCOMES_ALL),
    "as_of_may": ({"as_of": "2025-05-31"}, OUTCOMES_ALL[:-2]),  # June discharges are after as_of
    "sites_eastside": (
        {"sites": "Eastside"},
        [
            ("2025-03-01", "op", 3, 1, 0, 1, 0, 1, 1),  # L01, L02, L03
            ("2025-04-01", "op", 1, 0, 1, 0, 0, 0, 0),  # L04
            ("2025-06-01", "residential", 9, 5, 2, 1, 0, 1, 5),  # T01-T05 completed; T06, T07; T08; T09
        ],
    ),
    "start_end_may": (
        {"start": "2025-05-01", "end": "2025-05-31"},
        [
            ("2025-05-01", "withdrawal_management", 1, 1, 0, 0, 0, 0, 1),
            ("2025-05-01", "residential", 3, 2, 0, 0, 1, 0, 3),
        ],
    ),
}


# ======================================================================================
# length_of_stay rows: (level_of_care, episodes, median_days, p25_days, p75_days), quantile_cont
# ======================================================================================

LOS_ALL = [
    # F10-W 4, F05-W1 5, F05-W2 25: p25 at 0.5 -> 4.5, median 5, p75 at 1.5 -> 5 + 0.5 * 20 = 15
    ("withdrawal_management", 3, 5.0, 4.5, 15.0),
    # 32 stays: 13; 15 x2; 16 x2; 17; 18; 19 x5; 20 x4; 21 x9; 22 x3; 23; 24; 26; 37 (positions 0-31)
    # p25 at 7.75 -> 19 (positions 7, 8); median at 15.5 -> (20 + 21) / 2; p75 at 23.25 -> 21 (positions 23, 24)
    ("residential", 32, 20.5, 19.0, 21.0),
    ("php", 1, 15.0, 15.0, 15.0),  # A10: 01-05..01-20
    # A01 29, A05 31, A06 33, A09 36, A08 45, A03 50, X04 68: p25 at 1.5 -> 32, median 36, p75 at 4.5 -> 47.5
    ("iop", 7, 36.0, 32.0, 47.5),
    # L01 same day -> 1, L02 next day -> 1, L03 10, L04 60: p25 at 0.75 -> 1, median at 1.5 -> 5.5,
    # p75 at 2.25 -> 10 + 0.25 * 50 = 22.5
    ("op", 4, 5.5, 1.0, 22.5),
]

LOS_CASES = {
    "defaults": ({}, LOS_ALL),
    "sites_eastside": (
        {"sites": "Eastside"},
        [
            # T: 19, 20, 17, 21, 22, 20, 21, 21, 16 -> 16 17 19 20 20 21 21 21 22: positions 2, 4, 6
            ("residential", 9, 20.0, 19.0, 21.0),
            ("op", 4, 5.5, 1.0, 22.5),
        ],
    ),
    "start_end_march": (
        {"start": "2025-03-01", "end": "2025-03-31"},
        [
            ("withdrawal_management", 1, 25.0, 25.0, 25.0),  # F05-W2
            # F08-R1 19, X01 19, X02 21, F06 37: median (19 + 21) / 2, p25 at 0.75 -> 19, p75 at 2.25 -> 21 + 0.25 * 16
            ("residential", 4, 20.0, 19.0, 25.0),
            ("op", 3, 1.0, 1.0, 5.5),  # L01 1, L02 1, L03 10: p75 at 1.5 -> 5.5
        ],
    ),
    "as_of_may": (
        {"as_of": "2025-05-31"},
        [
            ("withdrawal_management", 3, 5.0, 4.5, 15.0),
            # the 32 less June's 11 (F11 16, T01-T09, X05 23): 13; 15 x2; 18; 19 x4; 20 x2; 21 x6; 22 x2; 24; 26; 37
            # 21 stays, positions 0-20: p25 at 5 -> 19, median at 10 -> 21, p75 at 15 -> 21
            ("residential", 21, 21.0, 19.0, 21.0),
            ("php", 1, 15.0, 15.0, 15.0),
            # without A08 (45): 29 31 33 36 50 68 -> p25 at 1.25 -> 31.5, median at 2.5 -> 34.5, p75 at 3.75 -> 46.5
            ("iop", 6, 34.5, 31.5, 46.5),
            ("op", 4, 5.5, 1.0, 22.5),
        ],
    ),
}


# ======================================================================================
# Helpers
# ======================================================================================


def wilson(successes: int, n: int, z: float = Z) -> tuple[float, float]:
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


@pytest.fixture(scope="module")
def con(build_db):
    return build_db(FIXTURE_NAME, DATA_THROUGH)


def _rows(df, columns: list[str]) -> list[tuple]:
    out = []
    for rec in df[columns].itertuples(index=False):
        row = []
        for v in rec:
            if hasattr(v, "strftime"):
                v = v.strftime("%Y-%m-%d")
            elif isinstance(v, float) and math.isnan(v):
                v = None
            row.append(v)
        out.append(tuple(row))
    return out


def _same(actual, expected) -> bool:
    if expected is None or actual is None:
        return actual is None and expected is None
    if isinstance(expected, float) or isinstance(actual, float):
        return actual == pytest.approx(expected, abs=1e-9)
    return actual == expected


def assert_table(actual: list[tuple], expected: list[tuple]):
    assert len(actual) == len(expected), f"{len(actual)} rows, expected {len(expected)}:\n{actual}\n{expected}"
    for got, want in zip(actual, expected):
        assert len(got) == len(want) and all(_same(a, e) for a, e in zip(got, want)), f"got {got}, expected {want}"


def _rate(num: int, den: int):
    return num / den if den else None


# ======================================================================================
# The queries against the literal tables
# ======================================================================================


@pytest.mark.parametrize("case", list(FUI_CASES))
def test_fui_followup(con, run_query, case):
    params, expected = FUI_CASES[case]
    df = run_query(con, "fui_followup", **params)
    assert list(df.columns) == COLUMNS["fui_followup"]
    assert_table(_rows(df, ["month", "eligible_discharges", "followed_up"]), expected)
    for (month, n, x), rate, low, high in zip(expected, df["followup_rate"], df["ci_low"], df["ci_high"]):
        assert rate == pytest.approx(x / n, abs=1e-9), month
        assert (low, high) == pytest.approx(wilson(x, n), abs=1e-9), month


@pytest.mark.parametrize("case", list(TTS_CASES))
def test_time_to_stepdown(con, run_query, case):
    params, expected, groups = TTS_CASES[case]
    df = run_query(con, "time_to_stepdown", **params)
    assert list(df.columns) == COLUMNS["time_to_stepdown"]
    assert_table(_rows(df, ["reason_group", "day", "at_risk", "stepped_on_day", "cumulative_share"]), expected)
    per_group = {g: (n, m) for g, n, m in _rows(df, ["reason_group", "stepped_by_max_day", "median_days"])}
    assert set(per_group) == set(groups)
    for group, (n, median) in groups.items():
        assert per_group[group][0] == n, group
        assert _same(per_group[group][1], median), group


@pytest.mark.parametrize("case", list(CONVERSION_CASES))
def test_referral_conversion(con, run_query, case):
    params, expected = CONVERSION_CASES[case]
    df = run_query(con, "referral_conversion", **params)
    assert list(df.columns) == COLUMNS["referral_conversion"]
    assert_table(_rows(df, ["site", "to_level_of_care", "referred", "admitted", "attended_14d"]), expected)
    assert_table(_rows(df, ["admitted_rate", "attended_rate"]), [(a / r, t / r) for _, _, r, a, t in expected])


@pytest.mark.parametrize("case", list(NOT_ARRIVED_CASES))
def test_referral_not_arrived(con, run_query, case):
    params, expected = NOT_ARRIVED_CASES[case]
    df = run_query(con, "referral_not_arrived", **params)
    assert list(df.columns) == COLUMNS["referral_not_arrived"]
    assert_table(_rows(df, ["month", "site", "referred", "not_arrived"]), expected)
    assert_table(_rows(df, ["not_arrived_rate"]), [(x / n,) for _, _, n, x in expected])


@pytest.mark.parametrize("case", list(READMISSION_CASES))
def test_readmission(con, run_query, case):
    params, expected = READMISSION_CASES[case]
    df = run_query(con, "readmission", **params)
    assert list(df.columns) == COLUMNS["readmission"]
    cols = ["month", "level_of_care", "discharges_30", "readmitted_30", "discharges_90", "readmitted_90"]
    assert_table(_rows(df, cols), expected)
    assert_table(
        _rows(df, ["readmission_rate_30", "readmission_rate_90"]),
        [(_rate(r30, d30), _rate(r90, d90)) for _, _, d30, r30, d90, r90 in expected],
    )


@pytest.mark.parametrize("case", list(OUTCOMES_CASES))
def test_discharge_outcomes(con, run_query, case):
    params, expected = OUTCOMES_CASES[case]
    df = run_query(con, "discharge_outcomes", **params)
    assert list(df.columns) == COLUMNS["discharge_outcomes"]
    assert_table(_rows(df, COLUMNS["discharge_outcomes"][:9]), expected)
    assert_table(_rows(df, ["positive_rate", "completion_rate"]), [(r[8] / r[2], r[3] / r[2]) for r in expected])
    for r in expected:  # the reason columns partition the discharges
        assert sum(r[3:8]) == r[2]


@pytest.mark.parametrize("case", list(LOS_CASES))
def test_length_of_stay(con, run_query, case):
    params, expected = LOS_CASES[case]
    df = run_query(con, "length_of_stay", **params)
    assert list(df.columns) == COLUMNS["length_of_stay"]
    assert_table(_rows(df, COLUMNS["length_of_stay"]), expected)


def test_suppression_hides_small_cells(con, catalog):
    """Cells from 1 to 10 (and stats whose n is 1-10) are hidden in the suppressed output."""
    from outcomes.catalog import runner

    result = runner.run(con, catalog["time_to_stepdown"], {"sites": "Eastside", "max_day": "3"})
    assert result.mask["at_risk"].all() and result.mask["cumulative_share"].all()
    assert result.mask["median_days"].all() and not result.mask["day"].any()
    result = runner.run(con, catalog["length_of_stay"], {})
    small = result.data["level_of_care"] != "residential"  # every level but residential (32) has 1-10 episodes
    for col in ("episodes", "median_days", "p25_days", "p75_days"):
        assert result.mask.loc[small, col].all(), col


# ======================================================================================
# Independent re-computation from the CSV files, checked against the literal tables
# ======================================================================================


def _read(table: str) -> list[dict[str, str]]:
    with open(FIXTURE / f"{table}.csv", newline="") as f:
        return list(csv.DictReader(f))


def _d(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _episodes() -> list[dict]:
    gender = {c["client_id"]: c["gender"] for c in _read("clients")}
    eps = []
    for e in _read("enrollments"):
        e = dict(e, admit=_d(e["admit_date"]), out=_d(e["discharge_date"]), gender=gender[e["client_id"]])
        eps.append(e)
    return eps


def _selected(params: dict[str, str]):
    sites = set(params["sites"].split(",")) if params.get("sites") else None
    genders = set(params["genders"].split(",")) if params.get("genders") else None
    return lambda e: (sites is None or e["site"] in sites) and (genders is None or e["gender"] in genders)


def _bounds(params: dict[str, str]):
    start, end = _d(params.get("start")), _d(params.get("end"))
    return lambda day: (start is None or day >= start) and (end is None or day <= end)


def _as_of(params: dict[str, str]) -> date:
    return _d(params.get("as_of", DATA_THROUGH))


def _month(day: date) -> str:
    return day.replace(day=1).isoformat()


def _is_transfer(e: dict, eps: list[dict]) -> bool:
    return any(
        o["client_id"] == e["client_id"]
        and o["episode_id"] != e["episode_id"]
        and o["level_of_care"] in ("residential", "withdrawal_management")
        and 0 <= (o["admit"] - e["out"]).days <= 1
        for o in eps
    )


def _attended_days(eps: list[dict], levels: tuple[str, ...]) -> dict[str, list[date]]:
    by_id = {e["episode_id"]: e for e in eps}
    days = defaultdict(list)
    for s in _read("attendance"):
        e = by_id[s["episode_id"]]
        if s["status"] == "attended" and e["level_of_care"] in levels:
            days[e["client_id"]].append(_d(s["session_date"]))
    return days


def _quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def reference_fui(params: dict[str, str]) -> list[tuple]:
    window, as_of = int(params.get("window_days", 30)), _as_of(params)
    chosen, in_range = _selected(params), _bounds(params)
    eps = _episodes()
    followup = _attended_days(eps, ("php", "iop", "op"))
    by_client = defaultdict(list)
    for e in eps:
        if (
            e["level_of_care"] in ("residential", "withdrawal_management")
            and e["out"]
            and e["out"] <= as_of
            and not _is_transfer(e, eps)
            and e["discharge_reason"] != "deceased"
        ):
            by_client[e["client_id"]].append(e)
    kept = []
    for stays in by_client.values():
        last = None
        for e in sorted(stays, key=lambda e: (e["out"], e["episode_id"])):
            if last is None or (e["out"] - last).days >= 31:
                kept.append(e)
                last = e["out"]
    counts = defaultdict(lambda: [0, 0])
    for e in kept:
        if not chosen(e) or not in_range(e["out"]) or e["out"] + timedelta(days=window) > as_of:
            continue
        c = counts[_month(e["out"])]
        c[0] += 1
        c[1] += any(1 <= (s - e["out"]).days <= window for s in followup[e["client_id"]])
    return [(m, n, x) for m, (n, x) in sorted(counts.items())]


def reference_tts(params: dict[str, str]) -> tuple[list[tuple], dict]:
    max_day, as_of = int(params.get("max_day", 60)), _as_of(params)
    chosen, in_range = _selected(params), _bounds(params)
    eps = _episodes()
    iop = _attended_days(eps, ("iop",))
    groups = defaultdict(list)  # group -> [(follow-up days, event day or None)]
    for e in eps:
        if e["level_of_care"] != "residential" or not e["out"] or e["out"] > as_of:
            continue
        if not chosen(e) or not in_range(e["out"]) or _is_transfer(e, eps):
            continue
        if e["discharge_reason"] in ("deceased", "incarcerated"):
            continue
        follow = (as_of - e["out"]).days
        later = [(s - e["out"]).days for s in iop[e["client_id"]] if s >= e["out"]]
        event = min(later) if later and min(later) <= follow else None
        reason = e["discharge_reason"]
        groups[reason if reason in ("completed", "left_against_advice") else "other"].append((follow, event))
    rows, summary = [], {}
    for group in sorted(groups):
        survival = 1.0
        for day in range(max_day + 1):
            at_risk = sum(1 for f, ev in groups[group] if f >= day and (ev is None or ev >= day))
            if at_risk == 0:
                break
            stepped = sum(1 for _, ev in groups[group] if ev == day)
            survival *= 1 - stepped / at_risk
            rows.append((group, day, at_risk, stepped, 1 - survival))
        days = [ev for _, ev in groups[group] if ev is not None and ev <= max_day]
        summary[group] = (len(days), _quantile(days, 0.5) if days else None)
    return rows, summary


def _referrals(params: dict[str, str]):
    chosen, in_range = _selected(params), _bounds(params)
    by_id = {e["episode_id"]: e for e in _episodes()}
    for t in _read("transitions"):
        origin = by_id[t["from_episode_id"]]
        when = _d(t["referral_date"])
        if chosen(origin) and in_range(when):
            yield t, origin, when, by_id.get(t["to_episode_id"])


def reference_conversion(params: dict[str, str]) -> list[tuple]:
    as_of = _as_of(params)
    sessions = defaultdict(list)
    for s in _read("attendance"):
        if s["status"] == "attended":
            sessions[s["episode_id"]].append(_d(s["session_date"]))
    counts = defaultdict(lambda: [0, 0, 0])
    for t, origin, when, to in _referrals(params):
        if when + timedelta(days=14) > as_of:
            continue
        c = counts[(origin["site"], t["to_level_of_care"])]
        c[0] += 1
        if to is None:
            continue
        c[1] += to["admit"] <= as_of
        if to["level_of_care"] in ("residential", "withdrawal_management"):
            c[2] += 0 <= (to["admit"] - when).days <= 14
        else:
            c[2] += any(0 <= (s - when).days <= 14 for s in sessions[to["episode_id"]])
    return [(site, level, *c) for (site, level), c in sorted(counts.items())]


def reference_not_arrived(params: dict[str, str]) -> list[tuple]:
    as_of = _as_of(params)
    counts = defaultdict(lambda: [0, 0])
    for _, origin, when, to in _referrals(params):
        if when > as_of:
            continue
        c = counts[(_month(when), origin["site"])]
        c[0] += 1
        c[1] += to is None or to["admit"] > as_of
    return [(m, site, *c) for (m, site), c in sorted(counts.items())]


def reference_readmission(params: dict[str, str]) -> list[tuple]:
    as_of = _as_of(params)
    chosen, in_range = _selected(params), _bounds(params)
    eps = _episodes()
    counts = defaultdict(lambda: [0, 0, 0, 0])
    for e in eps:
        if e["level_of_care"] not in ("residential", "iop") or not e["out"] or e["out"] > as_of:
            continue
        if not chosen(e) or not in_range(e["out"]) or e["discharge_reason"] == "deceased" or _is_transfer(e, eps):
            continue
        gaps = [
            (o["admit"] - e["out"]).days
            for o in eps
            if o["client_id"] == e["client_id"] and o["level_of_care"] in ("residential", "withdrawal_management")
        ]
        c = counts[(_month(e["out"]), e["level_of_care"])]
        for k, window in ((0, 30), (2, 90)):
            if e["out"] + timedelta(days=window) <= as_of:
                c[k] += 1
                c[k + 1] += any(2 <= g <= window for g in gaps)
    order = {"residential": 0, "iop": 1}
    return [
        (m, level, *c)
        for (m, level), c in sorted(counts.items(), key=lambda kv: (kv[0][0], order[kv[0][1]]))
        if c[0] > 0
    ]


LEVEL_ORDER = {"withdrawal_management": 0, "residential": 1, "php": 2, "iop": 3, "op": 4}


def _discharged(params: dict[str, str]):
    as_of = _as_of(params)
    chosen, in_range = _selected(params), _bounds(params)
    return [e for e in _episodes() if e["out"] and e["out"] <= as_of and chosen(e) and in_range(e["out"])]


def reference_outcomes(params: dict[str, str]) -> list[tuple]:
    buckets = {
        "completed": 1,
        "left_against_advice": 2,
        "administrative": 3,
        "transferred": 4,
        "other": 5,
        "incarcerated": 5,
        "deceased": 5,
    }
    counts = defaultdict(lambda: [0] * 7)
    for e in _discharged(params):
        c = counts[(_month(e["out"]), e["level_of_care"])]
        c[0] += 1
        c[buckets[e["discharge_reason"]]] += 1
        c[6] += e["discharge_reason"] in ("completed", "transferred")
    keys = sorted(counts, key=lambda k: (k[0], LEVEL_ORDER[k[1]]))
    return [(m, level, *counts[(m, level)]) for m, level in keys]


def reference_los(params: dict[str, str]) -> list[tuple]:
    stays = defaultdict(list)
    for e in _discharged(params):
        stays[e["level_of_care"]].append(max((e["out"] - e["admit"]).days, 1))
    return [
        (level, len(v), _quantile(v, 0.5), _quantile(v, 0.25), _quantile(v, 0.75))
        for level, v in sorted(stays.items(), key=lambda kv: LEVEL_ORDER[kv[0]])
    ]


@pytest.mark.parametrize("case", list(FUI_CASES))
def test_reference_fui(case):
    params, expected = FUI_CASES[case]
    assert_table(reference_fui(params), expected)


@pytest.mark.parametrize("case", list(TTS_CASES))
def test_reference_time_to_stepdown(case):
    params, expected, groups = TTS_CASES[case]
    rows, summary = reference_tts(params)
    assert_table(rows, expected)
    assert set(summary) == set(groups)
    for group, (n, median) in groups.items():
        assert summary[group][0] == n and _same(summary[group][1], median), group


@pytest.mark.parametrize("case", list(CONVERSION_CASES))
def test_reference_referral_conversion(case):
    params, expected = CONVERSION_CASES[case]
    assert_table(reference_conversion(params), expected)


@pytest.mark.parametrize("case", list(NOT_ARRIVED_CASES))
def test_reference_referral_not_arrived(case):
    params, expected = NOT_ARRIVED_CASES[case]
    assert_table(reference_not_arrived(params), expected)


@pytest.mark.parametrize("case", list(READMISSION_CASES))
def test_reference_readmission(case):
    params, expected = READMISSION_CASES[case]
    assert_table(reference_readmission(params), expected)


@pytest.mark.parametrize("case", list(OUTCOMES_CASES))
def test_reference_discharge_outcomes(case):
    params, expected = OUTCOMES_CASES[case]
    assert_table(reference_outcomes(params), expected)


@pytest.mark.parametrize("case", list(LOS_CASES))
def test_reference_length_of_stay(case):
    params, expected = LOS_CASES[case]
    assert_table(reference_los(params), expected)
