"""Generated extracts for the case-mix tests: one residential discharge per client, with known outcome odds.

Each site has its own mix of client factors. A client's chance of stepping down to IOP within 14 days follows
a logistic model: log odds = BASE + the factors' log odds ratios (COEF) + the site's own log odds ratio. Outcomes
are assigned by systematic sampling, not drawn at random: within each site, clients in order of their factor
pattern get outcome 1 where the running sum of their probabilities passes the next half-integer. So every
site's, and every pattern's, count of step-downs is its expected count to within one, and the tests' known
answers hold exactly rather than with a chance of failing.

A stepped-down client has an IOP episode at the same site with an attended session 0-9 days after the
residential discharge (inside the 7- and 14-day windows); the others have no IOP. Prior episodes are
withdrawal management stays 200 and 300 days before the residential admission.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np

AS_OF = dt.date(2025, 6, 30)
FIRST_DISCHARGE = dt.date(2024, 1, 1)
BASE = 0.6  # log odds of the reference client
# log odds ratios; levels not named here have 0
COEF = {
    "co_occurring_mh": {"true": math.log(0.45)},
    "living_situation": {"homeless": math.log(0.35), "sober_living": math.log(1.4)},
    "primary_substance": {"opioids": math.log(0.6), "stimulants": math.log(0.8)},
    "employment": {"unemployed": math.log(0.7)},
    "age_band": {"18-25": math.log(0.75)},
    "prior": {1: math.log(0.8), 2: math.log(0.6)},
}
BIRTH_YEAR = {"18-25": 2002, "26-34": 1994, "35-44": 1985, "45-54": 1975}
EASY = {
    "co_occurring_mh": {"false": 0.8, "true": 0.2},
    "living_situation": {"home": 0.7, "sober_living": 0.2, "homeless": 0.1},
    "primary_substance": {"alcohol": 0.6, "opioids": 0.2, "stimulants": 0.2},
    "employment": {"employed": 0.7, "unemployed": 0.3},
    "age_band": {"26-34": 0.4, "35-44": 0.4, "18-25": 0.2},
    "gender": {"female": 0.5, "male": 0.5},
    "payer": {"commercial": 0.6, "medicaid": 0.4},
    "prior": {0: 0.8, 1: 0.15, 2: 0.05},
}
HARD = {
    "co_occurring_mh": {"false": 0.3, "true": 0.7},
    "living_situation": {"home": 0.3, "sober_living": 0.1, "homeless": 0.6},
    "primary_substance": {"alcohol": 0.2, "opioids": 0.6, "stimulants": 0.2},
    "employment": {"employed": 0.2, "unemployed": 0.8},
    "age_band": {"26-34": 0.3, "35-44": 0.2, "18-25": 0.5},
    "gender": {"female": 0.4, "male": 0.6},
    "payer": {"commercial": 0.1, "medicaid": 0.9},
    "prior": {0: 0.4, 1: 0.3, 2: 0.3},
}


def blend(weight: float) -> dict:
    """A case mix `weight` of the way from EASY (0) to HARD (1)."""
    return {
        f: {
            lvl: (1 - weight) * EASY[f].get(lvl, 0) + weight * HARD[f].get(lvl, 0)
            for lvl in EASY[f].keys() | HARD[f].keys()
        }
        for f in EASY
    }


def clients(sites: dict[str, dict], seed: int = 1) -> list[dict]:
    """One dict per client: site, factors and outcome. `sites`: name -> {n, mix, odds_ratio (default 1)}."""
    rng = np.random.default_rng(seed)
    out = []
    for site, spec in sites.items():
        rows = []
        for _ in range(spec["n"]):
            row = {"site": site}
            for factor, levels in spec["mix"].items():
                names = sorted(levels, key=str)
                p = np.array([levels[k] for k in names], dtype=float)
                row[factor] = names[rng.choice(len(names), p=p / p.sum())]
            for factor, fixed in spec.get("fixed", {}).items():
                row[factor] = fixed
            logit = BASE + math.log(spec.get("odds_ratio", 1.0))
            logit += sum(COEF.get(f, {}).get(row[f], 0.0) for f in row if f != "site")
            row["p"] = 1 / (1 + math.exp(-logit))
            rows.append(row)
        rows.sort(key=lambda r: tuple(str(r[f]) for f in sorted(r) if f not in ("site", "p")))
        running = 0.0
        for row in rows:
            before, running = running, running + row["p"]
            row["outcome"] = math.floor(running + 0.5) - math.floor(before + 0.5)
            if "outcome_if" in spec:  # a rule instead of the model (e.g. perfect separation)
                row["outcome"] = int(spec["outcome_if"](row))
        out += rows
    return out


def write(folder: Path, people: list[dict]) -> Path:
    """The four contract tables as CSV files in `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"clients": [], "enrollments": [], "attendance": [], "transitions": []}
    for i, person in enumerate(people):
        cid = f"C{i:05d}"
        discharge = FIRST_DISCHARGE + dt.timedelta(days=i % 300)
        admit = discharge - dt.timedelta(days=25)
        tables["clients"].append(
            {
                "client_id": cid,
                "birth_year": BIRTH_YEAR[person["age_band"]],
                "gender": person["gender"],
                "primary_substance": person["primary_substance"],
                "co_occurring_mh": person["co_occurring_mh"],
                "living_situation": person["living_situation"],
                "employment": person["employment"],
            }
        )

        def episode(suffix, level, start, end, reason="completed"):
            tables["enrollments"].append(
                {
                    "episode_id": f"E{i:05d}-{suffix}",
                    "client_id": cid,
                    "site": person["site"],
                    "level_of_care": level,
                    "admit_date": start,
                    "discharge_date": end,
                    "discharge_reason": reason,
                    "payer": person["payer"],
                    "track": "day" if level == "iop" else "",
                    "asam_level": "",
                }
            )

        episode("R", "residential", admit, discharge)
        for k in range(person["prior"]):
            start = admit - dt.timedelta(days=200 + 100 * k)
            episode(f"W{k}", "withdrawal_management", start, start + dt.timedelta(days=5))
        if person["outcome"]:
            day = discharge + dt.timedelta(days=i % 10)
            episode("I", "iop", day, day + dt.timedelta(days=40))
            tables["attendance"].append(
                {
                    "session_id": f"S{i:05d}",
                    "episode_id": f"E{i:05d}-I",
                    "session_date": day,
                    "session_type": "group",
                    "status": "attended",
                    "duration_minutes": 180,
                }
            )
    # one referral, so that no table is empty (an empty extract is refused); referrals touch no measure here
    tables["transitions"].append(
        {
            "transition_id": "T00000",
            "from_episode_id": "E00000-R",
            "referral_date": FIRST_DISCHARGE,
            "to_level_of_care": "iop",
            "to_episode_id": "",
        }
    )
    columns = {
        "transitions": ["transition_id", "from_episode_id", "referral_date", "to_level_of_care", "to_episode_id"],
        "attendance": ["session_id", "episode_id", "session_date", "session_type", "status", "duration_minutes"],
    }
    for name, rows in tables.items():
        with open(folder / f"{name}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else columns[name])
            writer.writeheader()
            writer.writerows(rows)
    return folder
