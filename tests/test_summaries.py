"""Every table built at load time (queries/_build) equals a definition written here on the base tables.

Each definition is independent of the build SQL: correlated subqueries or Python instead of its joins and
windows. They are compared row for row on the demo database, on the headline fixture and on an edge fixture
(below) with the cases the demo never makes: outpatient care spanning a residential stay, sessions dated
before admission, a referral to an episode already attending, overlapping stays at one level.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from outcomes.catalog import runner
from outcomes.ingest import db
from outcomes.ingest.loader import load

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ROOT / "tests" / "fixtures" / "headline"
AS_OF = dt.date(2025, 6, 30)
ATTRIBUTES = "site, payer, gender, age_band, primary_substance, co_occurring_mh, living_situation, employment, track"

EDGE_ROWS = {
    "clients.csv": [
        "ED01,1980,female,alcohol,false,home,employed",
        "ED02,1975,male,opioids,true,homeless,unemployed",
        "ED03,1992,female,stimulants,,other,",
        "ED04,,male,cannabis,false,sober_living,student",
    ],
    "enrollments.csv": [
        # ED01: OP care that spans a residential stay; follow-up is its first session after the discharge
        "E-ED01-O,ED01,Northside,op,2025-01-06,2025-04-30,completed,medicaid,,1.0",
        "E-ED01-R,ED01,Northside,residential,2025-02-20,2025-03-05,completed,medicaid,,3.5",
        # ED02: referred to an IOP episode that was already attending before the referral
        "E-ED02-I,ED02,Southside,iop,2025-02-03,2025-04-11,completed,commercial,day,2.1",
        "E-ED02-R,ED02,Southside,residential,2025-02-17,2025-03-12,left_against_advice,commercial,,3.5",
        # ED03: an IOP session dated before its admission; a week with only program-cancelled sessions
        "E-ED03-I,ED03,Northside,iop,2025-03-12,,,self_pay,evening,2.1",
        # ED04: two overlapping OP episodes (the census counts the client once a week), a readmission
        "E-ED04-A,ED04,Northside,op,2025-01-08,2025-03-31,administrative,medicaid,,1.0",
        "E-ED04-B,ED04,Southside,op,2025-03-17,,,medicaid,,1.0",
        "E-ED04-W,ED04,Northside,withdrawal_management,2025-04-14,2025-04-18,completed,medicaid,,3.7-WM",
        "E-ED04-R,ED04,Northside,residential,2025-04-19,2025-05-09,completed,medicaid,,3.5",
        "E-ED04-S,ED04,Northside,residential,2025-06-02,2025-06-20,completed,medicaid,,3.5",
    ],
    "attendance.csv": [
        "S-ED01-1,E-ED01-O,2025-02-03,group,attended,90",
        "S-ED01-2,E-ED01-O,2025-03-05,group,attended,90",
        "S-ED01-3,E-ED01-O,2025-03-10,individual,no_show,50",
        "S-ED01-4,E-ED01-O,2025-03-17,individual,attended,",
        "S-ED02-1,E-ED02-I,2025-02-03,group,attended,90",
        "S-ED02-2,E-ED02-I,2025-02-05,education,attended,90",
        "S-ED02-3,E-ED02-I,2025-03-14,group,attended,90",
        "S-ED02-4,E-ED02-I,2025-03-14,family,client_cancelled,60",
        "S-ED03-0,E-ED03-I,2025-03-07,individual,attended,60",
        "S-ED03-1,E-ED03-I,2025-03-12,group,attended,90",
        "S-ED03-2,E-ED03-I,2025-03-12,education,attended,",
        "S-ED03-3,E-ED03-I,2025-03-24,group,program_cancelled,90",
        "S-ED03-4,E-ED03-I,2025-03-26,group,program_cancelled,90",
        "S-ED03-5,E-ED03-I,2025-04-02,family,attended,75",
        "S-ED04-1,E-ED04-A,2025-01-13,group,attended,90",
        "S-ED04-2,E-ED04-B,2025-03-18,group,attended,90",
        "S-ED04-3,E-ED04-A,2025-03-19,individual,attended,50",
        "S-ED04-4,E-ED04-B,2025-05-12,group,attended,90",
    ],
    "transitions.csv": [
        "T-ED02,E-ED02-R,2025-03-12,iop,E-ED02-I",
        "T-ED04,E-ED04-W,2025-04-18,residential,E-ED04-R",
        "T-ED04-OP,E-ED04-S,2025-06-20,op,",
    ],
}


@pytest.fixture(scope="module")
def edge_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edge")
    for path in HEADLINE.glob("*.csv"):
        shutil.copy(path, folder / path.name)
    for name, lines in EDGE_ROWS.items():
        text = (folder / name).read_text()
        (folder / name).write_text(text + ("" if text.endswith("\n") else "\n") + "\n".join(lines) + "\n")
    load(folder, folder / "edge.duckdb", AS_OF)
    con = db.connect(folder / "edge.duckdb")
    yield con
    con.close()


@pytest.fixture(params=["demo", "headline", "edge"])
def con(request, demo_db, build_db, edge_db):
    if request.param == "demo":
        return demo_db
    return build_db("headline", "2025-06-30") if request.param == "headline" else edge_db


def rows(con, sql: str) -> list[tuple]:
    cur = con.cursor()
    try:
        return cur.execute(sql).fetchall()
    finally:
        cur.close()


def assert_same(con, table: str, columns: str, expected_sql: str) -> None:
    """The table's rows (these columns) and the expected query's rows are the same multiset."""
    actual = rows(con, f"select {columns} from {table}")
    expected = rows(con, expected_sql)
    key = lambda r: tuple((x is None, str(x)) for x in r)
    assert sorted(actual, key=key) == sorted(expected, key=key), table


# ---- 10_episodes.sql and 15_sessions.sql ---------------------------------------------------------------------


def test_client_key_numbers_clients_in_id_order(con):
    assert_same(
        con,
        "episodes",
        "episode_id, client_key",
        """
        select e.episode_id, (select count(*) from clients as c where c.client_id <= e.client_id)
        from enrollments as e""",
    )


def test_filter_value_clients(con):
    # every site as the site-null rows, then each site, from the base tables by client id
    values = """
        select e.site, 'payer' as filter, e.payer as value, e.client_id from enrollments as e
        union all select e.site, 'track', e.track, e.client_id from enrollments as e
        union all select e.site, 'gender', c.gender, c.client_id from enrollments as e join clients as c using (client_id)
        union all select e.site, 'employment', c.employment, c.client_id
        from enrollments as e join clients as c using (client_id)"""
    assert_same(
        con,
        "(select * from filter_value_clients where filter in ('payer', 'track', 'gender', 'employment'))",
        "site, filter, value, clients",
        f"""
        select site, filter, value, count(distinct client_id) from ({values}) where value is not null group by all
        union all
        select null, filter, value, count(distinct client_id) from ({values}) where value is not null group by all""",
    )


def test_iop_episode_keys(con):
    assert_same(
        con,
        "iop_episode_keys",
        "episode_key, episode_id, client_id, admit_date",
        """
        select
            (select count(*) from enrollments as o where o.level_of_care = 'iop'
             and (o.admit_date < e.admit_date or (o.admit_date = e.admit_date and o.episode_id <= e.episode_id))),
            e.episode_id, e.client_id, e.admit_date
        from enrollments as e
        where e.level_of_care = 'iop'""",
    )


def test_iop_sessions(con):
    assert_same(
        con,
        "iop_sessions s join iop_episode_keys k using (episode_key)",
        "k.episode_id, s.session_date, s.session_type::varchar, s.status::varchar, s.day",
        """
        select a.episode_id, a.session_date, a.session_type, a.status, a.session_date - e.admit_date
        from attendance as a, enrollments as e
        where a.episode_id = e.episode_id and e.level_of_care = 'iop'""",
    )
    dates = [r[0] for r in rows(con, "select session_date from iop_sessions")]
    assert dates == sorted(dates), "in date order, for date-range scans"


def test_episode_attendance(con):
    assert_same(
        con,
        "episode_attendance",
        "episode_id, first_attended, last_attended",
        """
        select e.episode_id,
            (select min(session_date) from attendance as a where a.episode_id = e.episode_id and a.status = 'attended'),
            (select max(session_date) from attendance as a where a.episode_id = e.episode_id and a.status = 'attended')
        from enrollments as e
        where exists (select 1 from attendance as a where a.episode_id = e.episode_id and a.status = 'attended')""",
    )


# ---- 20_summaries.sql ----------------------------------------------------------------------------------------


def test_residential_discharges(con):
    assert_same(
        con,
        "residential_discharges",
        "episode_id, client_id, site, discharge_date, discharge_reason, is_transfer, days_to_iop",
        """
        select e.episode_id, e.client_id, e.site, e.discharge_date, e.discharge_reason,
            exists (select 1 from enrollments as n
                    where n.client_id = e.client_id and n.episode_id <> e.episode_id
                    and n.level_of_care in ('residential', 'withdrawal_management')
                    and n.admit_date between e.discharge_date and e.discharge_date + 1),
            (select min(a.session_date - e.discharge_date) from attendance as a, enrollments as i
             where a.episode_id = i.episode_id and i.client_id = e.client_id and i.level_of_care = 'iop'
             and a.status = 'attended' and a.session_date >= e.discharge_date)
        from enrollments as e
        where e.level_of_care = 'residential' and e.discharge_date is not null""",
    )


WEEK_COUNTS = """
    count(*) filter (where status <> 'program_cancelled'), count(*) filter (where status = 'attended'),
    count(*) filter (where status = 'no_show'), count(*) filter (where status = 'client_cancelled'),
    count(*) filter (where status = 'program_cancelled'),
    count(*) filter (where status = 'attended' and session_type = 'family'),
    sum(case when status = 'attended' then duration_minutes end),
    count(*) filter (where status = 'attended' and duration_minutes is null)"""


def test_iop_episode_weeks(con):
    assert_same(
        con,
        "iop_episode_weeks",
        "episode_id, week, scheduled, attended, no_show, client_cancelled, program_cancelled, "
        "family_attended, attended_minutes, attended_no_duration",
        f"""
        select a.episode_id, floor((a.session_date - e.admit_date) / 7)::bigint + 1 as week, {WEEK_COUNTS}
        from attendance as a, enrollments as e
        where a.episode_id = e.episode_id and e.level_of_care = 'iop' and a.session_date >= e.admit_date
        group by a.episode_id, week""",
    )


# ---- 30_scale.sql --------------------------------------------------------------------------------------------


def test_iop_episodes(con):
    assert_same(
        con,
        "iop_episodes",
        f"episode_id, client_id, admit_date, discharge_date, discharge_reason, is_stepdown, has_recent_care, "
        f"initiation_date, engaged, {ATTRIBUTES}",
        f"""
        with starts as (
            select e.*,
                (select min(a.session_date) from attendance as a where a.episode_id = e.episode_id
                 and a.status = 'attended' and a.session_date between e.admit_date and e.admit_date + 13) as initiation_date
            from episodes as e
            where e.level_of_care = 'iop'
        )
        select i.episode_id, i.client_id, i.admit_date, i.discharge_date, i.discharge_reason,
            exists (select 1 from enrollments as r where r.client_id = i.client_id and r.level_of_care = 'residential'
                    and r.discharge_date between i.admit_date - 14 and i.admit_date),
            exists (select 1 from enrollments as o where o.client_id = i.client_id and o.episode_id <> i.episode_id
                    and o.level_of_care in ('iop', 'residential') and o.admit_date < i.admit_date
                    and (o.discharge_date is null or o.discharge_date >= i.admit_date - 194)),
            i.initiation_date,
            coalesce((select count(distinct a.session_date) from attendance as a where a.episode_id = i.episode_id
                      and a.status = 'attended'
                      and a.session_date between i.initiation_date + 1 and i.initiation_date + 34) >= 2, false),
            {ATTRIBUTES}
        from starts as i""",
    )


def _type_counts() -> str:
    return ", ".join(
        f"count(*) filter (where session_type = '{t}' and status <> 'program_cancelled'), "
        f"count(*) filter (where session_type = '{t}' and status = 'attended'), "
        f"count(*) filter (where session_type = '{t}' and status = 'no_show')"
        for t in ("individual", "group", "education", "family")
    )


def test_iop_calendar_weeks(con):
    types = ", ".join(
        f"{t}_scheduled, {t}_attended, {t}_no_show" for t in ("individual", "group", "education", "family")
    )
    assert_same(
        con,
        "iop_calendar_weeks c join iop_episode_keys k using (episode_key)",
        f"k.episode_id, week_start, {types}, {ATTRIBUTES}",
        f"""
        select a.episode_id, a.session_date - (isodow(a.session_date) - 1)::integer as week_start,
            {_type_counts()}, {", ".join("any_value(e." + c.strip() + ")" for c in ATTRIBUTES.split(","))}
        from attendance as a, episodes as e
        where a.episode_id = e.episode_id and e.level_of_care = 'iop' and a.session_date >= e.admit_date
        group by a.episode_id, week_start""",
    )


def test_iop_calendar_week_groups(con):
    names = [
        f"{t}_{k}" for t in ("individual", "group", "education", "family") for k in ("scheduled", "attended", "no_show")
    ]
    counts = [c.strip() for c in _type_counts().split(", count")]
    counts = [counts[0]] + ["count" + c for c in counts[1:]]
    inner = ", ".join(f"{c} as {n}" for c, n in zip(counts, names))
    assert_same(
        con,
        "iop_calendar_week_groups",
        f"week_start, {ATTRIBUTES}, {', '.join(names)}",
        f"""
        select week_start, {ATTRIBUTES}, {", ".join(f"sum({n})" for n in names)}
        from (
            select a.session_date - (isodow(a.session_date) - 1)::integer as week_start, {inner},
                {", ".join("any_value(e." + c.strip() + ") as " + c.strip() for c in ATTRIBUTES.split(","))}
            from attendance as a, episodes as e
            where a.episode_id = e.episode_id and e.level_of_care = 'iop' and a.session_date >= e.admit_date
            group by a.episode_id, week_start
        )
        group by all""",
    )


def test_iop_months(con):
    assert_same(
        con,
        "iop_months m join iop_episode_keys k using (episode_key)",
        f"k.episode_id, month, scheduled, attended, no_show, had_family, {ATTRIBUTES}",
        f"""
        select a.episode_id, make_date(year(a.session_date), month(a.session_date), 1) as month,
            count(*) filter (where status <> 'program_cancelled'), count(*) filter (where status = 'attended'),
            count(*) filter (where status = 'no_show'),
            bool_or(session_type = 'family' and status = 'attended'),
            {", ".join("any_value(e." + c.strip() + ")" for c in ATTRIBUTES.split(","))}
        from attendance as a, episodes as e
        where a.episode_id = e.episode_id and e.level_of_care = 'iop' and a.session_date >= e.admit_date
        group by a.episode_id, month""",
    )


def test_iop_episode_doses(con):
    # from the sessions: each discharged IOP episode's weeks 1 to its discharge week, and those reaching each rule
    weeks = """
        select e.episode_id, (a.session_date - e.admit_date) // 7 + 1 as week,
            count(*) filter (where a.status = 'attended') as attended,
            sum(a.duration_minutes) filter (where a.status = 'attended') as minutes,
            count(*) filter (where a.status = 'attended' and a.duration_minutes is null) as no_duration
        from attendance as a join enrollments as e on a.episode_id = e.episode_id
        where e.level_of_care = 'iop' and a.session_date >= e.admit_date and e.discharge_date is not null
            and (a.session_date - e.admit_date) // 7 <= (e.discharge_date - e.admit_date) // 7
        group by all"""
    assert_same(
        con,
        "iop_episode_doses",
        "episode_key, active_weeks, weeks_3plus_sessions, weeks_9plus_hours",
        f"""
        select k.episode_key, (e.discharge_date - e.admit_date) // 7 + 1,
            (select count(*) from ({weeks}) as w where w.episode_id = e.episode_id and w.attended >= 3),
            (select count(*) from ({weeks}) as w where w.episode_id = e.episode_id
                and ((w.no_duration > 0 and w.attended >= 3) or (w.no_duration = 0 and w.minutes >= 540)))
        from enrollments as e join iop_episode_keys as k on e.episode_id = k.episode_id
        where e.level_of_care = 'iop' and e.discharge_date is not null""",
    )


def test_iop_weeks(con):
    assert_same(
        con,
        "iop_weeks w join iop_episode_keys k using (episode_key)",
        f"k.episode_id, w.admit_date, discharge_date, week, scheduled, attended, attended_minutes, "
        f"attended_no_duration, three_sessions, nine_hours, {ATTRIBUTES}",
        f"""
        select w.episode_id, e.admit_date, e.discharge_date, w.week, w.scheduled, w.attended, w.attended_minutes,
            w.attended_no_duration, w.attended >= 3,
            (w.attended_no_duration > 0 and w.attended >= 3)
                or (w.attended_no_duration = 0 and coalesce(w.attended_minutes, 0) >= 540),
            {", ".join("e." + c.strip() for c in ATTRIBUTES.split(","))}
        from iop_episode_weeks as w, episodes as e
        where w.episode_id = e.episode_id""",
    )


def test_prior_episodes(con):
    # counted in Python: the client's other episodes admitted 1 to 365 days before this one's admission
    admitted = defaultdict(list)
    for episode, client, day in rows(con, "select episode_id, client_id, admit_date from enrollments"):
        admitted[client].append((episode, day))
    expected = {
        episode: sum(other != episode and 1 <= (day - seen).days <= 365 for other, seen in stays)
        for stays in admitted.values()
        for episode, day in stays
    }
    assert dict(rows(con, "select episode_id, prior_episodes from episode_priors")) == expected
    assert {n for n in expected.values()} >= {0, 1}  # the fixture has episodes with none and with one
    for table in ("iop_episodes", "residential_stepdowns", "followup_discharges"):
        carried = rows(con, f"select episode_id, prior_episodes from {table}")
        assert carried and all(expected[e] == n for e, n in carried), table


def test_residential_stepdowns(con):
    assert_same(
        con,
        "residential_stepdowns",
        f"episode_id, client_id, discharge_date, discharge_reason, is_transfer, days_to_iop, {ATTRIBUTES}",
        f"""
        select d.episode_id, d.client_id, d.discharge_date, d.discharge_reason, d.is_transfer, d.days_to_iop,
            {", ".join("e." + c.strip() for c in ATTRIBUTES.split(","))}
        from residential_discharges as d, episodes as e
        where d.episode_id = e.episode_id""",
    )


def test_followup_discharges(con):
    # the 31-day rule walked in Python: keep a discharge 31 days or more after the last kept one
    candidates = rows(
        con,
        """
        select e.episode_id, e.client_id, e.discharge_date from enrollments as e
        where e.level_of_care in ('residential', 'withdrawal_management') and e.discharge_date is not null
        and e.discharge_reason <> 'deceased'
        and not exists (select 1 from enrollments as n where n.client_id = e.client_id and n.episode_id <> e.episode_id
                        and n.level_of_care in ('residential', 'withdrawal_management')
                        and n.admit_date between e.discharge_date and e.discharge_date + 1)""",
    )
    by_client = defaultdict(list)
    for episode, client, day in candidates:
        by_client[client].append((day, episode))
    kept = {}
    for stays in by_client.values():
        last = None
        for day, episode in sorted(stays):
            kept[episode] = last is None or (day - last).days >= 31
            last = day if kept[episode] else last
    followup = dict(
        rows(
            con,
            """
        select d.episode_id, (select min(a.session_date) - d.discharge_date from attendance as a, enrollments as o
                              where a.episode_id = o.episode_id and o.client_id = d.client_id
                              and o.level_of_care in ('php', 'iop', 'op') and a.status = 'attended'
                              and a.session_date > d.discharge_date)
        from enrollments as d where d.discharge_date is not null""",
        )
    )
    attributes = {
        r[0]: r[1:]
        for r in rows(con, f"select episode_id, client_id, level_of_care, discharge_date, {ATTRIBUTES} from episodes")
    }
    expected = [(e, *attributes[e][:3], kept[e], followup[e], *attributes[e][3:]) for e in kept]
    actual = rows(
        con,
        f"select episode_id, client_id, level_of_care, discharge_date, kept, days_to_followup, "
        f"{ATTRIBUTES} from followup_discharges",
    )
    assert sorted(actual, key=str) == sorted(expected, key=str)


def test_referrals(con):
    assert_same(
        con,
        "referrals",
        f"transition_id, referral_date, to_level_of_care, to_episode_id, arrived_level, arrived_date, "
        f"days_to_attended, {ATTRIBUTES}",
        f"""
        select t.transition_id, t.referral_date, t.to_level_of_care, t.to_episode_id,
            (select level_of_care from enrollments as n where n.episode_id = t.to_episode_id),
            (select admit_date from enrollments as n where n.episode_id = t.to_episode_id),
            (select min(a.session_date) - t.referral_date from attendance as a
             where a.episode_id = t.to_episode_id and a.status = 'attended' and a.session_date >= t.referral_date),
            {", ".join("e." + c.strip() for c in ATTRIBUTES.split(","))}
        from transitions as t, episodes as e
        where t.from_episode_id = e.episode_id""",
    )


def test_discharge_readmissions(con):
    assert_same(
        con,
        "discharge_readmissions",
        f"episode_id, level_of_care, discharge_date, discharge_reason, is_transfer, days_to_readmission, {ATTRIBUTES}",
        f"""
        select d.episode_id, d.level_of_care, d.discharge_date, d.discharge_reason,
            exists (select 1 from enrollments as a where a.client_id = d.client_id and a.episode_id <> d.episode_id
                    and a.level_of_care in ('residential', 'withdrawal_management')
                    and a.admit_date between d.discharge_date and d.discharge_date + 1),
            (select min(a.admit_date - d.discharge_date) from enrollments as a
             where a.client_id = d.client_id and a.episode_id <> d.episode_id
             and a.level_of_care in ('residential', 'withdrawal_management')
             and a.admit_date between d.discharge_date + 2 and d.discharge_date + 90),
            {", ".join("d." + c.strip() for c in ATTRIBUTES.split(","))}
        from episodes as d
        where d.level_of_care in ('residential', 'iop') and d.discharge_date is not null""",
    )


def test_path_steps(con):
    # paths in Python: a client's episodes by admission (then discharge, open last, then id); a gap of more than
    # 90 days after the previous discharge starts a new path
    episodes = rows(
        con, f"select client_id, episode_id, level_of_care, admit_date, discharge_date, {ATTRIBUTES} from episodes"
    )
    by_client = defaultdict(list)
    for e in episodes:
        by_client[e[0]].append(e)
    far = dt.date(9999, 12, 31)
    expected = []
    for client, stays in by_client.items():
        stays.sort(key=lambda e: (e[3], e[4] or far, e[1]))
        paths, previous = [], None
        for e in stays:
            if previous is None or (previous[4] is not None and (e[3] - previous[4]).days > 90):
                paths.append([])
            paths[-1].append(e)
            previous = e
        for number, path in enumerate(paths, 1):
            first = path[0]
            for step, e in enumerate(path, 1):
                following = path[step][2] if step < len(path) else None
                expected.append((client, number, step, e[2], following, first[3], *first[5:]))
    actual = rows(
        con, f"select client_id, path_no, step, level_of_care, next_level, path_start, {ATTRIBUTES} from path_steps"
    )
    assert sorted(actual, key=str) == sorted(expected, key=str)


def test_same_level_overlaps(con):
    assert_same(
        con,
        "same_level_overlaps",
        "episode_id",
        """
        select a.episode_id from enrollments as a
        where exists (
            select 1 from enrollments as b
            where b.client_id = a.client_id and b.level_of_care = a.level_of_care and b.episode_id <> a.episode_id
            and b.admit_date - (isodow(b.admit_date) - 1)::integer
                <= coalesce(a.discharge_date - (isodow(a.discharge_date) - 1)::integer, date '9999-12-31')
            and a.admit_date - (isodow(a.admit_date) - 1)::integer
                <= coalesce(b.discharge_date - (isodow(b.discharge_date) - 1)::integer, date '9999-12-31'))""",
    )


def test_edge_fixture_holds_the_edge_cases(edge_db):
    # what the definitions above must get right on the edge fixture, written out
    assert rows(edge_db, "select days_to_followup from followup_discharges where episode_id = 'E-ED01-R'") == [(12,)]
    assert rows(edge_db, "select days_to_attended from referrals where transition_id = 'T-ED02'") == [(2,)]
    assert rows(
        edge_db,
        "select min(day) from iop_sessions join iop_episode_keys using (episode_key) where episode_id = 'E-ED03-I'",
    ) == [(-5,)]
    assert rows(edge_db, "select count(*) from same_level_overlaps where episode_id like 'E-ED04-%'") == [(2,)]
    assert rows(
        edge_db, "select is_transfer, days_to_readmission from discharge_readmissions where episode_id = 'E-ED04-R'"
    ) == [(False, 24)]


# ---- catalog queries that read the tables above: same rows as their definitions on the base tables ------------

REFERENCE = {
    # distinct clients (by id) holding each value of each client-group filter among the selected episodes
    "filter_values": (
        "filter, value, clients",
        """
        with e as (select * from filtered(episodes, $filters)),
        held as (
            select 'payer' as filter, payer as value, client_id from e
            union all select 'gender', gender, client_id from e
            union all select 'age_band', age_band, client_id from e
            union all select 'primary_substance', primary_substance, client_id from e
            union all select 'living_situation', living_situation, client_id from e
            union all select 'employment', employment, client_id from e
            union all select 'track', track, client_id from e
        )
        select filter, value, count(distinct client_id) from held where value is not null group by all""",
    ),
    # distinct clients active in each week at each level, every level of the selected episodes, zero when none
    "census": (
        "week_start, level_of_care, active_clients",
        """
        with pop as (
            select * from filtered(episodes, $filters) where admit_date <= $as_of
        ),
        weeks as (
            select unnest(generate_series(date_trunc('week', coalesce($start, $as_of - 182)),
                date_trunc('week', least(coalesce($end, $as_of), $as_of)), interval 7 day))::date as w
        )
        select w, l.level_of_care,
            (select count(distinct p.client_id) from pop as p where p.level_of_care = l.level_of_care
             and p.admit_date <= w + 6 and (p.discharge_date is null or p.discharge_date >= w))
        from weeks, (select distinct level_of_care from pop) as l""",
    ),
    "attendance_weekly": (
        "week_start, track, session_type, scheduled, attended, no_show",
        """
        select period_start(date_trunc('week', a.session_date)::date, $grain), coalesce(e.track, 'unknown'),
            a.session_type, count(*),
            count(*) filter (where a.status = 'attended'), count(*) filter (where a.status = 'no_show')
        from attendance as a, filtered(episodes, $filters, tracks := $tracks) as e
        where a.episode_id = e.episode_id and e.level_of_care = 'iop' and a.status <> 'program_cancelled'
            and a.session_date >= e.admit_date
            and ($start is null or a.session_date >= $start) and ($end is null or a.session_date <= $end)
        group by all""",
    ),
    "kpi_iop_attendance": (
        "month, scheduled, attended, no_show",
        """
        select case when $grain = 'month' then date_trunc('month', a.session_date)::date end as m, count(*),
            count(*) filter (where a.status = 'attended'), count(*) filter (where a.status = 'no_show')
        from attendance as a, filtered(episodes, $filters, tracks := $tracks) as e
        where a.episode_id = e.episode_id and e.level_of_care = 'iop' and a.status <> 'program_cancelled'
            and a.session_date >= e.admit_date
            and ($start is null or a.session_date >= $start) and ($end is null or a.session_date <= $end)
        group by m""",
    ),
    # every week from admission to the last day (discharge, or as_of if later or open) is a client week
    "iop_dose": (
        "track, client_weeks, weeks_3plus_sessions, weeks_9plus_hours",
        """
        with e as (
            select episode_id, coalesce(track, 'unknown') as track, admit_date,
                case when discharge_date <= $as_of then discharge_date else $as_of end as last_day
            from filtered(episodes, $filters, tracks := $tracks)
            where level_of_care = 'iop' and admit_date <= $as_of
                and ($start is null or admit_date >= $start) and ($end is null or admit_date <= $end)
        ),
        weeks as (
            select e.episode_id, e.track, e.admit_date, unnest(range(0, last_day - admit_date + 1, 7))::integer as first_day
            from e
        ),
        counted as (
            select w.track,
                count(a.session_date) filter (where a.status = 'attended') as attended,
                sum(case when a.status = 'attended' then a.duration_minutes end) as minutes,
                count(*) filter (where a.status = 'attended' and a.duration_minutes is null) as unknown
            from weeks as w
            left join attendance as a on a.episode_id = w.episode_id
                and a.session_date between w.admit_date + w.first_day and w.admit_date + w.first_day + 6
            group by w.episode_id, w.track, w.first_day
        )
        select track, count(*), count(*) filter (where attended >= 3),
            count(*) filter (where case when unknown > 0 then attended >= 3 else coalesce(minutes, 0) >= 540 end)
        from counted group by track""",
    ),
    # at risk on day d: followed up to d and not stepped down before it; stepped on day d
    "time_to_stepdown": (
        "reason_group, day, at_risk, stepped_on_day",
        """
        with o as (
            select case when d.discharge_reason in ('completed', 'left_against_advice') then d.discharge_reason
                else 'other' end as reason_group,
                $as_of - d.discharge_date as followup,
                case when d.days_to_iop <= $as_of - d.discharge_date then d.days_to_iop end as event
            from residential_discharges as d, filtered(episodes, $filters) as e
            where d.episode_id = e.episode_id and d.discharge_date <= $as_of and not d.is_transfer
                and d.discharge_reason not in ('deceased', 'incarcerated')
                and ($start is null or d.discharge_date >= $start) and ($end is null or d.discharge_date <= $end)
        )
        select * from (
            select reason_group, day, count(*) filter (where followup >= day and (event is null or event >= day)) as n,
                count(*) filter (where event = day)
            from o, range(0, $max_day + 1) as r(day)
            group by all
        ) where n > 0""",
    ),
}

CASES = [
    {},
    {"sites": ["Northside"]},
    {"sites": ["Northside", "Southside"]},
    {"start": dt.date(2025, 3, 4), "end": dt.date(2025, 5, 20)},
    {"start": dt.date(2025, 3, 1), "end": dt.date(2025, 3, 31)},
    {"start": dt.date(2025, 3, 11), "end": dt.date(2025, 3, 13)},
    {"end": dt.date(2025, 4, 9)},
    {"start": dt.date(2025, 2, 26)},
    {"as_of": dt.date(2025, 4, 15)},
    {"grain": "month", "start": dt.date(2025, 2, 3)},
    {"tracks": ["evening"], "start": dt.date(2025, 3, 10)},
    {"payers": ["medicaid"]},
    {"max_day": 10},
]


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_rewritten_query_equals_its_definition(name, con, catalog, run_query):
    columns, sql = REFERENCE[name]
    query = catalog[name]
    for given in CASES:
        given = {k: v for k, v in given.items() if query.takes(k)}
        actual = run_query(con, name, **given)
        values = {k: v for k, v in runner.bind(query, given, runner.data_through_of(con)).items() if f"${k}" in sql}
        cur = con.cursor()
        try:
            expected = cur.execute(sql, values).fetchall()
        finally:
            cur.close()
        got = [tuple(r) for r in actual[[c.strip() for c in columns.split(",")]].itertuples(index=False)]
        got = [tuple(None if pd.isna(x) else (x.date() if isinstance(x, pd.Timestamp) else x) for x in r) for r in got]
        key = lambda r: tuple((x is None, str(x)) for x in r)
        assert sorted(got, key=key) == sorted(expected, key=key), (name, given)
