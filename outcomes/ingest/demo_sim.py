"""The demo's simulation: clients taken through courses of care (withdrawal management, residential, PHP,
IOP, OP, with step-downs, transfers and readmissions), each step one numpy operation over a chunk of clients.
The rates and shares below are the demo's assumptions, chosen to look like a real provider's, not measured.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from outcomes.ingest.contract import (
    DISCHARGE_REASONS,
    EMPLOYMENT,
    LEVELS,
    LIVING,
    SESSION_TYPES,
    STATUSES,
    TRACKS,
)

SITES = ("Northside", "Riverside", "Eastgate")
GENDERS = ("female", "male", "nonbinary")
SUBSTANCES = ("alcohol", "opioids", "stimulants", "cannabis", "other")
PAYERS = ("medicaid", "commercial", "medicare", "self_pay", "state_funded")
ASAM = {"withdrawal_management": "3.7-WM", "residential": "3.5", "php": "2.5", "iop": "2.1", "op": "1.0"}
ADMISSION_MONTHS = 22  # 2024-01 .. 2025-10 for the default data-through date
# Care is simulated from this many days before the window, so the first months already hold step-downs,
# readmissions and long outpatient stays instead of ramping up from nothing. Episodes that ended before the
# window are dropped; those still open on its first day are kept, with all their sessions.
BURN_IN_DAYS = 548

WM, RES, PHP, IOP, OP = (LEVELS.index(x) for x in ("withdrawal_management", "residential", "php", "iop", "op"))
TRANSFER = "T"  # stage key: the residential stay after a transfer to another site
DONE, AMA, ADMIN, XFER, JAIL, DIED, OTHER = (
    DISCHARGE_REASONS.index(x)
    for x in ("completed", "left_against_advice", "administrative", "transferred", "incarcerated", "deceased", "other")
)
GROUP, INDIV, EDU, FAMILY = (SESSION_TYPES.index(x) for x in ("group", "individual", "education", "family"))
ATTENDED, NO_SHOW, CLIENT_CANC, PROG_CANC = (
    STATUSES.index(x) for x in ("attended", "no_show", "client_cancelled", "program_cancelled")
)
HOMELESS, SOBER = LIVING.index("homeless"), LIVING.index("sober_living")
EMPLOYED, UNEMPLOYED = EMPLOYMENT.index("employed"), EMPLOYMENT.index("unemployed")


# Discharge-reason mix by stage (columns: completed, left_against_advice, administrative, transferred,
# incarcerated, deceased, other) before the client's engagement and the site shift the completion share.
REASON_P = {
    stage: np.array(p)[np.argsort([DONE, AMA, ADMIN, XFER, JAIL, DIED, OTHER])] / sum(p)
    for stage, p in {
        WM: [0.78, 0.14, 0.03, 0.02, 0.005, 0.001, 0.024],
        RES: [0.60, 0.25, 0.06, 0.04, 0.015, 0.003, 0.032],
        TRANSFER: [0.62, 0.25, 0.06, 0, 0.015, 0.003, 0.05],
        PHP: [0.65, 0.18, 0.09, 0.02, 0.01, 0.002, 0.048],
        IOP: [0.55, 0.24, 0.12, 0.02, 0.02, 0.002, 0.048],
        OP: [0.50, 0.26, 0.14, 0.02, 0.02, 0.004, 0.056],
    }.items()
}
SITE_COMPLETION = np.array([0.0, 0.04, -0.04])
# Eastgate's IOP has a waiting list: fewer residential discharges arrive there.
SITE_STEPDOWN_ARRIVAL = np.array([0.82, 0.80, 0.58])
SITE_SHARE = [0.42, 0.33, 0.25]
# First level of care by primary substance (rows: SUBSTANCES; columns: LEVELS). Most clients start in
# outpatient care; withdrawal management and residential are mostly alcohol and opioids.
ENTRY_P = np.array(
    [
        [0.12, 0.14, 0.05, 0.41, 0.28],
        [0.16, 0.18, 0.05, 0.38, 0.23],
        [0.06, 0.20, 0.07, 0.42, 0.25],
        [0.01, 0.04, 0.04, 0.46, 0.45],
        [0.05, 0.12, 0.06, 0.45, 0.32],
    ]
)
PAYER_P = np.array(
    [
        [0.25, 0.60, 0.03, 0.07, 0.05],
        [0.35, 0.50, 0.00, 0.10, 0.05],  # rows: EMPLOYMENT
        [0.65, 0.05, 0.08, 0.05, 0.17],
        [0.50, 0.15, 0.20, 0.05, 0.10],
    ]
)
# Scheduled minutes by session type, for php, iop and op; one of the four is drawn per session.
# An IOP program day is two sessions (a group, then a group or psychoeducation) of about 90 minutes.
MINUTES = {
    "individual": ([50, 55, 60, 60],) * 3,
    "family": ([60, 75, 90, 90],) * 3,
    "group": ([300, 300, 300, 240], [90, 90, 90, 75], [90, 90, 90, 60]),
    "education": ([180, 180, 120, 120], [90, 90, 90, 60], [90, 60, 60, 90]),
}
DURATIONS = np.array([[MINUTES[t][k] for t in SESSION_TYPES] for k in range(3)], np.int32)
OUTPATIENT_ROW = {PHP: 0, IOP: 1, OP: 2}
ROW_OF_LEVEL = np.array([OUTPATIENT_ROW.get(level, 0) for level in range(len(LEVELS))])
# IOP program weekdays (Monday = 0) for three or four days a week; 7 pads an unused slot.
IOP_DAYS = {"day": ([0, 2, 4, 7], [0, 1, 3, 4]), "evening": ([0, 1, 3, 7], [0, 1, 2, 3])}
IOP_PATTERN = np.array([IOP_DAYS[t] for t in TRACKS])  # [track, four days a week, slot]
PROGRAM, SECOND, SLOT_INDIV, SLOT_FAMILY, SLOT_OP, INTAKE = range(6)  # SECOND: an IOP day's second session


def _day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


def _weekdays_only(days: np.ndarray) -> np.ndarray:
    """Move weekend days to the next Monday (outpatient programs admit on weekdays)."""
    return days + np.select([_weekday(days) == 5, _weekday(days) == 6], [2, 1], 0)


def _pick(rng: np.random.Generator, n: int, p) -> np.ndarray:
    return rng.choice(len(p), size=n, p=p).astype(np.int8)


def _pick_rows(rng: np.random.Generator, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one column index per row i from the distribution table[rows[i]]."""
    cdf = np.cumsum(table, axis=1)
    hit = (rng.random(len(rows))[:, None] > cdf[rows]).sum(axis=1)
    return np.minimum(hit, table.shape[1] - 1).astype(np.int8)


def _los(rng: np.random.Generator, level: int, reason: np.ndarray) -> np.ndarray:
    """Days from admission to discharge; an episode that ends early lasts part of the planned stay."""
    n = len(reason)
    planned = {
        WM: lambda: rng.choice([3, 4, 5, 6, 7], n, p=[0.1, 0.25, 0.3, 0.2, 0.15]),
        RES: lambda: np.rint(rng.triangular(14, 28, 45, n)),
        PHP: lambda: rng.integers(14, 29, n),
        IOP: lambda: rng.integers(56, 113, n),  # 8-16 weeks
        OP: lambda: rng.integers(182, 549, n),  # continuing care, 6-18 months
    }[level]()
    # Outpatient leavers drift away over weeks (OP ones over months); residential leavers mostly go early.
    share = rng.beta(*{OP: (2, 1.6), IOP: (1.5, 1.8), PHP: (1.5, 1.8)}.get(level, (1.2, 2.2)), n)
    early = np.maximum(1, np.rint(planned * share))
    return np.where(reason == DONE, planned, early).astype(np.int64)


class Sim:
    """One chunk of clients taken through treatment courses; indices and day numbers are chunk-local."""

    def __init__(self, rng: np.random.Generator, n: int, first_day: date, last_day: date):
        self.start, through = _day(first_day), _day(last_day)
        start = self.start - BURN_IN_DAYS
        self.rng, self.through = rng, through
        self.eps, self.refs, self.links = [], [], []
        self.n_eps = self.n_refs = 0
        self.end = np.full(n, -1, np.int64)  # last discharge of the client's current course
        self.last = np.zeros(n, np.int8)  # its discharge reason
        self.open = np.zeros(n, bool)  # an episode still open, or an admission due after `through`
        self.dead = np.zeros(n, bool)
        self.gender = _pick(rng, n, [0.36, 0.62, 0.02])
        self.substance = _pick(rng, n, [0.38, 0.27, 0.18, 0.10, 0.07])
        self.mh = rng.random(n) < 0.45
        self.living = _pick(rng, n, [0.62, 0.12, 0.14, 0.12])
        self.employment = _pick(rng, n, [0.38, 0.05, 0.47, 0.10])
        self.payer = _pick_rows(rng, PAYER_P, self.employment)
        self.site = _pick(rng, n, SITE_SHARE)
        # One engagement score drives completion and attendance, so intake risk factors show in outcomes.
        self.z = (
            rng.normal(0, 0.8, n)
            - 0.5 * (self.living == HOMELESS)
            + 0.3 * (self.living == SOBER)
            + 0.2 * (self.employment == EMPLOYED)
            - 0.2 * (self.employment == UNEMPLOYED)
            - 0.2 * self.mh
            - 0.2 * np.isin(self.substance, (SUBSTANCES.index("opioids"), SUBSTANCES.index("stimulants")))
        )
        days = np.arange(start, through + 1)
        month = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
        weight = (
            (1 + 0.15 * (days - start) / max(1, through - start))
            * np.where(_weekday(days) >= 5, 0.5, 1)
            * np.select([month == 11, month == 0], [0.85, 1.12], 1)
        )
        self.first = rng.choice(days, n, p=weight / weight.sum())
        year = self.first.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        # Adults, and still no older than 75 at a readmission in a later year.
        self.birth_year = year - np.minimum(18 + np.rint(rng.gamma(3, 6.5, n)), 75 - (last_day.year - year))
        self.holidays = np.array(
            [
                _day(date(y, m, d))
                for y in range(first_day.year - 1, last_day.year + 1)
                for m, d in ((1, 1), (7, 4), (12, 25))
            ]
        )

    def add(self, who, level, site, admit, los, reason, ref):
        """Record the episodes admitted by `through`; return episode index (-1: none), discharge day, ended."""
        made = admit <= self.through
        disch = admit + los
        ended = made & (disch <= self.through)
        ep = np.where(made, self.n_eps + np.cumsum(made) - 1, -1)
        self.eps.append(
            dict(
                client=who[made],
                level=np.full(made.sum(), level, np.int8),
                site=site[made],
                admit=admit[made],
                disch=np.where(ended, disch, -1)[made],
                reason=np.where(ended, reason, -1)[made],
            )
        )
        self.n_eps += int(made.sum())
        self.links.append((ref[made & (ref >= 0)], ep[made & (ref >= 0)]))
        self.open[who[~ended]] = True
        self.end[who[ended]], self.last[who[ended]] = disch[ended], reason[ended]
        self.dead[who[ended & (reason == DIED)]] = True
        return ep, disch, ended

    def send(self, key, to, who, ep, disch, site, arrive, gap):
        """Refer discharges to level `to`; those who arrive join stage `key` `gap` days later."""
        n = len(who)
        rows = self.n_refs + np.arange(n)
        self.refs.append((ep, np.full(n, to, np.int8), disch))
        self.n_refs += n
        go = self.rng.random(n) < arrive
        admit = disch + gap
        if to in OUTPATIENT_ROW:
            admit = np.where(gap > 0, _weekdays_only(admit), admit)
        self.queue[key].append((who[go], admit[go], site[go], rows[go]))

    def stage(self, key):
        """Admit everyone queued for stage `key`, discharge them and queue their next level of care."""
        rng, level = self.rng, RES if key == TRANSFER else key
        who, admit, site, ref = (np.concatenate(x) for x in zip(*self.queue.pop(key)))
        n, p = len(who), REASON_P[key]
        done = rng.random(n) < np.clip(p[DONE] + 0.1 * self.z[who] + SITE_COMPLETION[site], 0.05, 0.97)
        others = np.delete(np.arange(len(p)), DONE)
        reason = np.where(done, DONE, rng.choice(others, n, p=p[others] / p[others].sum())).astype(np.int8)
        ep, disch, ended = self.add(who, level, site, admit, _los(rng, level, reason), reason, ref)
        completed, u = ended & (reason == DONE), rng.random(n)

        def send(to, m, arrive, gap, to_site=site, key=None):
            arrive = arrive[m] if np.ndim(arrive) else arrive
            self.send(to if key is None else key, to, who[m], ep[m], disch[m], to_site[m], arrive, gap)

        if level == WM:  # mostly on to residential the same or the next day
            m = completed & (u < 0.9)
            send(RES, m, 0.93, rng.choice([0, 1], m.sum(), p=[0.7, 0.3]))
            m = completed & (u >= 0.9) & (u < 0.95)
            send(IOP, m, 0.7, rng.integers(1, 8, m.sum()))
        elif level == RES:
            if key == RES:  # a transfer continues the stay at another site the next day
                m = ended & (reason == XFER)
                send(RES, m, 0.96, np.ones(m.sum(), np.int64), (site + rng.integers(1, 3, n)) % 3, TRANSFER)
            refer = np.select([reason == DONE, reason == AMA, np.isin(reason, (ADMIN, OTHER))], [0.93, 0.3, 0.35], 0)
            m = ended & (u < refer)
            arrive = SITE_STEPDOWN_ARRIVAL[site] * np.where(reason == DONE, 1, 0.6)
            g = rng.random(n)
            gap = np.select([g < 0.35, g < 0.75], [0, rng.integers(1, 8, n)], rng.integers(8, 31, n))
            moved = np.where(rng.random(n) < 0.92, site, (site + rng.integers(1, 3, n)) % 3)
            php = rng.random(n) < 0.18
            send(PHP, m & php, arrive, gap[m & php], moved)
            send(IOP, m & ~php, arrive, gap[m & ~php], moved)
        elif level == PHP:
            m = completed & (u < 0.9)
            send(IOP, m, 0.85, rng.choice([0, 1, 2, 3], m.sum(), p=[0.35, 0.4, 0.15, 0.1]))
        elif level == IOP:  # most completers, and some who leave early, continue in OP
            m = ended & (u < np.where(reason == DONE, 0.88, np.where(np.isin(reason, (AMA, ADMIN)), 0.25, 0)))
            send(OP, m, np.where(reason == DONE, 0.88, 0.55), rng.integers(0, 15, m.sum()))

    def course(self, who, entry, start, site):
        """Run one treatment course for clients `who`, entering at level `entry` on day `start`."""
        self.open[who] = False
        self.queue = {key: [] for key in (WM, RES, TRANSFER, PHP, IOP, OP)}
        none = np.full(len(who), -1)
        for level in (WM, RES, PHP, IOP, OP):
            m = entry == level
            admit = start[m] if level in (WM, RES) else _weekdays_only(start[m])
            self.queue[level].append((who[m], admit, site[m], none[m]))
        for key in self.queue.copy():
            self.stage(key)

    def run(self):
        """Simulate up to four courses per client: the first, then returns (about half to residential care)."""
        rng, n = self.rng, len(self.z)
        who, start, site = np.arange(n), self.first, self.site
        self.course(who, _pick_rows(rng, ENTRY_P, self.substance), start, site)
        for _ in range(3):
            p = 0.36 + 0.1 * np.isin(self.last[who], (AMA, ADMIN)) - 0.03 * self.z[who]
            back = ~self.open[who] & ~self.dead[who] & (rng.random(len(who)) < p)
            who, k = who[back], back.sum()
            g = rng.random(k)
            gap = np.select(
                [g < 0.35, g < 0.7], [rng.integers(2, 31, k), rng.integers(31, 91, k)], rng.integers(91, 366, k)
            )
            site = np.where(rng.random(k) < 0.85, self.site[who], (self.site[who] + rng.integers(1, 3, k)) % 3)
            entry = _pick(rng, k, [0.24, 0.28, 0, 0.32, 0.16])  # WM, RES, PHP, IOP, OP
            self.course(who, entry, self.end[who] + gap, site)

    def episodes(self, want: int) -> dict[str, np.ndarray] | None:
        """Window episodes of the first `want` clients with one, by client and admission; None if too few.

        Sets self.clients (the clients kept) and self.rank (episode index -> output row, -1 if dropped)."""
        rng = self.rng
        e = {k: np.concatenate([part[k] for part in self.eps]) for k in self.eps[0]}
        inside = (e["admit"] >= self.start) | (e["disch"] >= self.start) | (e["disch"] < 0)  # open on day 1
        self.clients = np.unique(e["client"][inside])[:want]
        if len(self.clients) < want:
            return None
        keep = np.flatnonzero(inside & np.isin(e["client"], self.clients))
        order = keep[np.lexsort((keep, e["admit"][keep], e["client"][keep]))]
        self.rank = np.full(self.n_eps, -1, np.int64)
        self.rank[order] = np.arange(len(order))
        e = {k: v[order] for k, v in e.items()}
        n = len(order)
        e["payer"] = np.where(
            rng.random(n) < 0.06, _pick(rng, n, [0.5, 0.28, 0.07, 0.05, 0.1]), self.payer[e["client"]]
        )
        evening = rng.random(n) < np.where(e["level"] == IOP, 0.55, 0.08)
        e["track"] = np.where(
            np.isin(e["level"], (PHP, IOP)), np.where(evening, TRACKS.index("evening"), TRACKS.index("day")), -1
        ).astype(np.int8)
        return e

    def sessions(self, e: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Scheduled sessions of the php, iop and op episodes, in episode and date order."""
        rng = self.rng
        idx = np.flatnonzero(np.isin(e["level"], list(OUTPATIENT_ROW)))
        level, admit, reason, track = e["level"][idx], e["admit"][idx], e["reason"][idx], e["track"][idx]
        end = np.where(e["disch"][idx] < 0, self.through, e["disch"][idx])
        n = len(idx)
        # A weekly timetable of up to 12 slots per episode: weekday (7 = unused) and kind of slot. Slots 4-7
        # hold the second session of the IOP program days in slots 0-3, so each follows its first.
        wd = np.full((n, 12), 7, np.int32)  # int32 day numbers keep a chunk's week x slot grid small
        kind = np.full((n, 12), PROGRAM, np.int8)
        php, iop, op = level == PHP, level == IOP, level == OP
        wd[php, :5] = np.arange(5)
        wd[iop, :4] = IOP_PATTERN[track[iop], (rng.random(n) < 0.4)[iop].astype(np.int64)]
        wd[iop, 4:8], kind[:, 4:8] = wd[iop, :4], SECOND
        wd[iop, 8], kind[iop, 8] = rng.integers(0, 5, iop.sum()), SLOT_INDIV
        family = iop & (rng.random(n) < 0.4)
        wd[family, 9], kind[family, 9] = rng.integers(0, 5, family.sum()), SLOT_FAMILY
        first, twice = rng.integers(0, 5, n), op & (rng.random(n) < 0.8)
        wd[op, 0], kind[op, :2] = first[op], SLOT_OP
        wd[twice, 1] = (first[twice] + 2 + rng.integers(0, 2, twice.sum())) % 5
        wd[:, 11], kind[:, 11] = _weekday(admit), INTAKE
        order = np.argsort(wd, axis=1, kind="stable")  # slots by weekday, so rows come out in date order
        wd, kind = np.take_along_axis(wd, order, 1), np.take_along_axis(kind, order, 1)
        week0 = (admit - _weekday(admit)).astype(np.int32)
        weeks = (end - week0) // 7 + 1
        row = np.repeat(np.arange(n), weeks)
        first_row = np.repeat(np.cumsum(weeks) - weeks, weeks).astype(np.int32)
        week = (np.arange(len(row), dtype=np.int32) - first_row)[:, None]
        day, k = week0[row, None] + 7 * week + wd[row], kind[row]
        parity = rng.integers(0, 2, n)[row, None]
        ok = (
            (wd[row] < 7)
            & (day >= admit[row, None])
            & (day <= end[row, None])
            & ((k != SLOT_FAMILY) | ((week + parity) % 2 == 0))
            & ((k != INTAKE) | (week == 0))
        )
        s = np.broadcast_to(row[:, None], ok.shape)[ok]
        day, k = day[ok], k[ok]
        m, lv, u = len(s), level[s], rng.random(len(s))
        typ = np.select(
            [(k == PROGRAM) & (lv == PHP), k == PROGRAM, k == SECOND, k == SLOT_OP, k == SLOT_FAMILY],
            [
                np.select([u < 0.7, u < 0.9], [GROUP, EDU], INDIV),
                np.where(u < 0.85, GROUP, EDU),
                np.where(u < 0.4, GROUP, EDU),
                np.select([u < 0.5, u < 0.95], [GROUP, INDIV], FAMILY),
                FAMILY,
            ],
            INDIV,
        ).astype(np.int8)
        # Attendance fades over the weeks since admission; leavers stop coming 1-3 weeks before discharge.
        base = np.clip(0.91 + 0.04 * self.z[e["client"][idx]] + rng.normal(0, 0.04, n) - 0.04 * op, 0.45, 0.98)
        slope = np.clip(rng.normal(0.24, 0.06, n), 0, 0.45)
        fade = np.where(np.isin(reason, (AMA, ADMIN)), np.maximum(admit, end - rng.integers(7, 22, n)), end + 1)
        p = (
            base[s]
            - slope[s] * np.minimum((day - admit[s]) // 7, 11) / 11
            + np.select([typ == INDIV, typ == FAMILY], [0.03, -0.06], 0)
        )
        p = np.where(k == INTAKE, 0.97, np.where(day >= fade[s], 0.04, p))
        # Who comes to a program day mostly stays for its second session, and who misses it misses both.
        came, second = rng.random(m), np.flatnonzero(k == SECOND)
        came[second] = np.where(rng.random(len(second)) < 0.9, came[second - 1], came[second])
        status = np.where(came < p, ATTENDED, np.where(rng.random(m) < 0.62, NO_SHOW, CLIENT_CANC))
        status[(rng.random(m) < 0.025) | np.isin(day, self.holidays)] = PROG_CANC
        minutes = DURATIONS[ROW_OF_LEVEL[lv], typ, rng.integers(0, 4, m)]
        return dict(episode=idx[s], day=day, type=typ, status=status.astype(np.int8), minutes=minutes)
