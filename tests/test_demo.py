"""The synthetic demo data: deterministic, within the contract, and shaped like real care pathways."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from outcomes.ingest.contract import DISCHARGE_REASONS, EMPLOYMENT, LEVELS, LIVING, SESSION_TYPES, STATUSES, TRACKS
from outcomes.ingest.demo import generate
from outcomes.ingest.demo_sim import BURN_IN_DAYS

TABLES = ("clients", "enrollments", "attendance", "transitions")
THROUGH = date(2025, 10, 31)


def _connect(folder, fmt: str = "parquet") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    for name in TABLES:
        path = str(folder / f"{name}.{fmt}").replace("'", "''")
        con.execute(f"create view {name} as select * from {reader}('{path}')")
    return con


def _one(con, sql: str):
    return con.execute(sql).fetchone()[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for key, seed in (("a", 1), ("b", 1), ("c", 2)):
        folder = tmp_path_factory.mktemp(key)
        out[key] = (folder, generate(folder, clients=2000, seed=seed))
    return out


@pytest.fixture(scope="module")
def con(runs):
    return _connect(runs["a"][0])


def test_same_seed_gives_identical_tables(runs):
    (a, _), (b, _) = runs["a"], runs["b"]
    for name in TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(a / f"{name}.parquet"), pd.read_parquet(b / f"{name}.parquet"))
        assert (a / f"{name}.parquet").read_bytes() == (b / f"{name}.parquet").read_bytes()


def test_different_seed_gives_different_data(runs):
    a, c = runs["a"][0], runs["c"][0]
    for name in ("enrollments", "attendance"):
        assert not pd.read_parquet(a / f"{name}.parquet").equals(pd.read_parquet(c / f"{name}.parquet"))


def test_returned_counts_match_files_and_volumes(runs, con):
    counts = runs["a"][1]
    assert counts == {name: _one(con, f"select count(*) from {name}") for name in TABLES}
    assert counts["clients"] == 2000
    assert 1.6 <= counts["enrollments"] / 2000 <= 2.6
    assert counts["attendance"] > 60 * 2000  # about 90 sessions a client: long OP continuing care after IOP


def test_ids_are_unique(con):
    for name, key in (
        ("clients", "client_id"),
        ("enrollments", "episode_id"),
        ("attendance", "session_id"),
        ("transitions", "transition_id"),
    ):
        assert _one(con, f"select count(*) - count(distinct {key}) from {name}") == 0
        assert _one(con, f"select count(*) from {name} where {key} is null") == 0
    arrivals = "select count(*) - count(distinct to_episode_id) from transitions where to_episode_id is not null"
    assert _one(con, arrivals) == 0


def test_foreign_keys_exist(con):
    for child, column, parent, key in (
        ("enrollments", "client_id", "clients", "client_id"),
        ("attendance", "episode_id", "enrollments", "episode_id"),
        ("transitions", "from_episode_id", "enrollments", "episode_id"),
        ("transitions", "to_episode_id", "enrollments", "episode_id"),
    ):
        orphans = f"select count(*) from {child} where {column} not in (select {key} from {parent})"
        assert _one(con, orphans) == 0, (child, column)
    assert _one(con, "select count(*) from clients where client_id not in (select client_id from enrollments)") == 0


def test_discharge_fields_are_consistent(con):
    mismatched = "select count(*) from enrollments where (discharge_date is null) <> (discharge_reason is null)"
    assert _one(con, mismatched) == 0
    assert _one(con, "select count(*) from enrollments where discharge_date < admit_date") == 0
    assert _one(con, "select count(*) from enrollments where discharge_date is null") > 0


def test_no_date_after_through(con):
    for name, column in (
        ("enrollments", "admit_date"),
        ("enrollments", "discharge_date"),
        ("attendance", "session_date"),
        ("transitions", "referral_date"),
    ):
        assert _one(con, f"select max({column}) from {name}") <= THROUGH, column


@pytest.mark.parametrize(
    "table, column, allowed",
    [
        ("clients", "gender", ("female", "male", "nonbinary")),
        ("clients", "primary_substance", ("alcohol", "opioids", "stimulants", "cannabis", "other")),
        ("clients", "living_situation", LIVING),
        ("clients", "employment", EMPLOYMENT),
        ("enrollments", "site", ("Northside", "Riverside", "Eastgate")),
        ("enrollments", "level_of_care", LEVELS),
        ("enrollments", "discharge_reason", DISCHARGE_REASONS),
        ("enrollments", "payer", ("medicaid", "commercial", "medicare", "self_pay", "state_funded")),
        ("enrollments", "track", TRACKS),
        ("enrollments", "asam_level", ("3.7-WM", "3.5", "2.5", "2.1", "1.0")),
        ("attendance", "session_type", SESSION_TYPES),
        ("attendance", "status", STATUSES),
        ("transitions", "to_level_of_care", LEVELS),
    ],
)
def test_values_are_in_vocabulary(con, table, column, allowed):
    rows = con.execute(f"select distinct {column} from {table} where {column} is not null").fetchall()
    assert rows and {value for (value,) in rows} <= set(allowed)


def test_shape_of_clients_and_episodes(con):
    assert _one(con, "select count(distinct site) from enrollments") == 3
    assert (
        _one(con, "select count(*) from enrollments where track is not null and level_of_care not in ('iop', 'php')")
        == 0
    )
    ages = con.execute(
        "select min(year(admit_date) - birth_year), max(year(admit_date) - birth_year) "
        "from enrollments join clients using (client_id)"
    ).fetchone()
    assert ages[0] >= 18 and ages[1] <= 75
    missing = _one(con, "select avg((gender is null)::int) from clients")
    assert 0 < missing < 0.06
    transfers = _one(
        con,
        "select count(*) from transitions t "
        "join enrollments e on e.episode_id = t.from_episode_id "
        "join enrollments n on n.episode_id = t.to_episode_id "
        "where e.discharge_reason = 'transferred' and n.level_of_care = 'residential' "
        "and n.site <> e.site and n.admit_date = e.discharge_date + 1",
    )
    assert transfers > 0
    asam = dict(
        con.execute(
            "select level_of_care, any_value(asam_level) from enrollments where asam_level is not null group by 1"
        ).fetchall()
    )
    assert asam == {"withdrawal_management": "3.7-WM", "residential": "3.5", "php": "2.5", "iop": "2.1", "op": "1.0"}


def test_sessions_only_in_outpatient_episodes_within_their_dates(con):
    levels = {
        row[0]
        for row in con.execute(
            "select distinct level_of_care from attendance join enrollments using (episode_id)"
        ).fetchall()
    }
    assert levels == {"php", "iop", "op"}
    outside = con.execute(
        "select count(*) from attendance join enrollments using (episode_id) "
        "where session_date < admit_date or session_date > coalesce(discharge_date, ?)",
        [THROUGH],
    ).fetchone()[0]
    assert outside == 0


def test_admissions_span_at_least_18_months(con):
    first, last = con.execute("select min(admit_date), max(admit_date) from enrollments").fetchone()
    assert (last.year - first.year) * 12 + last.month - first.month >= 18


def test_first_months_are_not_thin(con):
    # stays open on the window's first day are kept, so its census is close to the census a year later
    def active(day: str) -> int:
        return _one(
            con,
            f"select count(*) from enrollments where admit_date <= date '{day}' "
            f"and coalesce(discharge_date, date '{day}') >= date '{day}'",
        )

    assert active("2024-01-01") > 0.7 * active("2025-01-01")
    assert _one(con, "select count(*) from enrollments where discharge_date < date '2024-01-01'") == 0


def test_iop_attendance_falls_over_the_weeks(con):
    share = dict(
        con.execute(
            "select (session_date - admit_date) // 7 + 1 as week, avg((status = 'attended')::int) "
            "from attendance join enrollments using (episode_id) where level_of_care = 'iop' group by 1"
        ).fetchall()
    )
    assert share[1] > share[8]
    assert 0.7 < share[1] < 0.95


def test_residential_step_down_gaps_vary(con):
    gaps = con.execute(
        "select case when n.episode_id is null then 'never' when n.admit_date = t.referral_date then 'same day' "
        "when n.admit_date - t.referral_date <= 14 then '1-14' else 'later' end, count(*) "
        "from transitions t join enrollments e on e.episode_id = t.from_episode_id "
        "left join enrollments n on n.episode_id = t.to_episode_id "
        "where e.level_of_care = 'residential' and t.to_level_of_care = 'iop' group by 1"
    ).fetchall()
    gaps = dict(gaps)
    assert gaps.get("same day", 0) > 0 and gaps.get("1-14", 0) > 0 and gaps.get("never", 0) > 0
    assert (
        _one(
            con,
            "select count(*) from transitions where referral_date <> "
            "(select discharge_date from enrollments where episode_id = from_episode_id)",
        )
        == 0
    )


def test_some_referrals_never_arrive(con):
    never = _one(con, "select avg((to_episode_id is null)::int) from transitions")
    assert 0.1 < never < 0.4
    # the arriving episode is at the referred level and starts on or after the referral
    assert (
        _one(
            con,
            "select count(*) from transitions t join enrollments n on n.episode_id = t.to_episode_id "
            "where n.level_of_care <> t.to_level_of_care or n.admit_date < t.referral_date",
        )
        == 0
    )


def test_csv_holds_the_same_data_and_replaces_parquet(runs, tmp_path):
    generate(tmp_path, clients=2000, seed=1, fmt="parquet")
    counts = generate(tmp_path, clients=2000, seed=1, fmt="csv")
    assert counts == runs["a"][1]
    # the four tables and the optional annotations, each in one format only
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.csv" for name in [*TABLES, "annotations"])
    csv = _connect(tmp_path, "csv")
    parquet_dir = str(runs["a"][0]).replace("'", "''")
    for name in TABLES:
        parquet = f"'{parquet_dir}/{name}.parquet'"
        diff = (
            f"select count(*) from ((select * from {name} except all select * from {parquet}) "
            f"union all (select * from {parquet} except all select * from {name}))"
        )
        assert _one(csv, diff) == 0, name
    types = dict(csv.execute("select column_name, column_type from (describe enrollments)").fetchall())
    assert types["admit_date"] == types["discharge_date"] == "DATE"
    types = dict(csv.execute("select column_name, column_type from (describe clients)").fetchall())
    assert types["co_occurring_mh"] == "BOOLEAN"


def test_chunks_keep_ids_unique_and_report_progress(tmp_path):
    calls = []
    counts = generate(tmp_path / "all", clients=1200, seed=3, chunk_clients=500, progress=lambda f, m: calls.append(f))
    assert calls == pytest.approx([1 / 3, 2 / 3, 1.0])
    con = _connect(tmp_path / "all")
    assert counts["clients"] == _one(con, "select count(distinct client_id) from clients") == 1200
    assert _one(con, "select count(distinct episode_id) from enrollments") == counts["enrollments"]
    assert _one(con, "select count(distinct session_id) from attendance") == counts["attendance"]
    # a chunk depends only on (seed, chunk index): the first chunk alone is the same data
    generate(tmp_path / "first", clients=500, seed=3, chunk_clients=500)
    for name in ("clients", "enrollments"):
        alone = pd.read_parquet(tmp_path / "first" / f"{name}.parquet")
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "all" / f"{name}.parquet").head(len(alone)), alone)


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, clients=10, fmt="xlsx")


def test_another_through_date_moves_the_window(tmp_path):
    through = date(2025, 6, 29)  # a Sunday: weekend admissions must not spill past it
    generate(tmp_path, clients=1500, seed=4, through=through)
    con = _connect(tmp_path)
    first, last = con.execute(
        "select min(admit_date), max(greatest(admit_date, discharge_date)) from enrollments"
    ).fetchone()
    # the window starts 2023-09-01; a stay admitted before it is there because it was still open on that day
    assert first >= date(2023, 9, 1) - timedelta(days=BURN_IN_DAYS) and last <= through
    assert _one(con, "select count(*) from enrollments where discharge_date < date '2023-09-01'") == 0
    assert _one(con, "select max(session_date) from attendance") <= through
    assert (
        _one(
            con,
            "select count(*) from transitions t join enrollments n on n.episode_id = t.to_episode_id "
            "where n.admit_date < t.referral_date",
        )
        == 0
    )
