"""grain=periods: one run of a KPI query for all the Overview's periods gives, period by period, the rows of
separate grain=period runs; and the `dates` parameter type it takes."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from outcomes.catalog import runner
from outcomes.catalog.params import Param
from outcomes.catalog.query import CatalogError, parse
from outcomes.measures import kpis

# (sidebar From, To): the default period (whole months), periods of days cut mid-month and mid-week, a short
# period, and one longer than the data (periods before the data are empty)
SPANS = [
    (None, None),
    (dt.date(2025, 1, 15), dt.date(2025, 4, 14)),
    (dt.date(2025, 3, 10), dt.date(2025, 3, 30)),
    (dt.date(2024, 12, 3), None),
    (dt.date(2024, 1, 1), None),
]
FILTERS = [{}, {"sites": ["Northside"]}, {"genders": ["female"], "tracks": ["evening"]}]


@pytest.fixture(scope="module", params=["director", "demo"])
def con(request, build_db, demo_db):
    return build_db("director", "2025-06-30") if request.param == "director" else demo_db


def _separate(con, catalog, kpi, periods, given, raw):
    query = catalog[kpi.query]
    extra = {k: v for k, v in given.items() if k in query.params}
    return [runner.run(con, query, kpi.query_params(p) | extra, raw=raw).data for p in periods]


def _together(con, catalog, kpi, periods, given, raw):
    query = catalog[kpi.query]
    extra = {k: v for k, v in given.items() if k in query.params}
    return kpi.by_period(runner.run(con, query, kpi.periods_params(periods) | extra, raw=raw).data, periods)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    if a.empty and b.empty:
        return
    # the Kaplan-Meier product is multiplied in no fixed order: equal to the last few bits; a column of counts
    # is nullable (Int64) where suppression hid a cell in any row of the result, so in one run but not the other
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), rtol=1e-12, check_dtype=False)


@pytest.mark.parametrize("kpi", kpis.KPIS, ids=[k.query for k in kpis.KPIS])
@pytest.mark.parametrize("span", SPANS, ids=["default", "days", "short", "from", "long"])
def test_each_period_row_equals_its_own_grain_period_run(con, catalog, kpi, span):
    through = runner.data_through_of(con)
    period, _ = kpis.period_from(*span, through)
    periods = kpis.periods_before(period)
    for given in FILTERS:
        for raw in (True, False):
            apart = _separate(con, catalog, kpi, periods, given, raw)
            together = _together(con, catalog, kpi, periods, given, raw)
            assert len(together) == len(periods)
            for p, a, b in zip(periods, apart, together):
                try:
                    _same(a, b)
                except AssertionError as exc:
                    raise AssertionError(f"{kpi.query} {p} {given} raw={raw}: {exc}") from None
            assert kpis.tile(kpi, apart, periods).value == kpis.tile(kpi, together, periods).value


def test_some_periods_have_rows(con, catalog):
    """The comparison above is not vacuous: the default periods have rows on both databases."""
    through = runner.data_through_of(con)
    periods = kpis.periods_before(kpis.default_period(through))
    rows = {kpi.query: sum(map(len, _together(con, catalog, kpi, periods, {}, True))) for kpi in kpis.KPIS}
    assert min(rows.values()) >= 1 and sum(rows.values()) >= 8, rows


def test_periods_rows_are_keyed_by_their_first_day(build_db, catalog):
    con = build_db("director", "2025-06-30")
    starts = [dt.date(2025, 1, 1), dt.date(2025, 4, 1)]
    df = runner.run(
        con,
        catalog["stepdown_rate"],
        {"grain": "periods", "period_starts": starts, "start": "2025-01-01", "end": "2025-06-30"},
        raw=True,
    ).data
    assert [d.date() for d in df["month"]] == starts
    assert df["eligible_discharges"].tolist() == [37, 39]  # as in test_kpi_queries_by_hand
    # as a comma-separated string too (the command line and the Explore page), in any order
    again = runner.run(
        con,
        catalog["stepdown_rate"],
        {"grain": "periods", "period_starts": "2025-04-01,2025-01-01", "start": "2025-01-01", "end": "2025-06-30"},
        raw=True,
    ).data
    pd.testing.assert_frame_equal(df, again)


def test_periods_leave_out_rows_before_the_earliest_start(build_db, catalog):
    con = build_db("director", "2025-06-30")
    df = runner.run(con, catalog["stepdown_rate"], {"grain": "periods", "period_starts": ["2025-04-01"]}, raw=True).data
    assert len(df) == 1 and df["eligible_discharges"].iloc[0] == 39
    assert runner.run(con, catalog["stepdown_rate"], {"grain": "periods"}, raw=True).data.empty


def test_attendance_periods_cut_inside_months_and_weeks(build_db, demo_db, catalog):
    """kpi_iop_attendance counts whole months, whole weeks and single days from three tables: every way of
    cutting a range into periods gives the same counts as the periods one by one."""
    import random

    query = catalog["kpi_iop_attendance"]
    for con in (build_db("director", "2025-06-30"), demo_db):
        through = runner.data_through_of(con)
        first = through.replace(day=1)
        cases = [
            ([through - dt.timedelta(days=d) for d in (200, 150, 101, 60, 45, 3)], through),
            ([first - dt.timedelta(days=d) for d in (120, 90, 31, 0)], through),
            ([first - dt.timedelta(days=d) for d in (61, 59, 30, 28)], first + dt.timedelta(days=2)),
            ([first - dt.timedelta(days=d) for d in (75, 70, 40)], first - dt.timedelta(days=32)),
        ]
        pick = random.Random(3)
        for _ in range(8):  # start, end and period starts anywhere, several in one month or one week
            days = sorted(pick.sample(range(0, 240), pick.randint(1, 6)), reverse=True)
            end = through - dt.timedelta(days=pick.randint(0, min(days)))
            cases.append(([through - dt.timedelta(days=d) for d in days], end))
        for starts, end in cases:
            ends = [s - dt.timedelta(days=1) for s in starts[1:]] + [end]
            together = runner.run(
                con, query, {"grain": "periods", "period_starts": starts, "start": starts[0], "end": end}, raw=True
            ).data
            for s, e in zip(starts, ends):
                alone = runner.run(con, query, {"start": s, "end": e}, raw=True).data
                row = together[pd.to_datetime(together["month"]).dt.date == s].drop(columns="month")
                pd.testing.assert_frame_equal(row.reset_index(drop=True), alone.drop(columns="month"))


# The `dates` parameter type


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2025-01-01", [dt.date(2025, 1, 1)]),
        (" 2025-01-01 , 2025-04-01,", [dt.date(2025, 1, 1), dt.date(2025, 4, 1)]),
        ([dt.date(2025, 4, 1), "2025-01-01"], [dt.date(2025, 4, 1), dt.date(2025, 1, 1)]),
        ((dt.datetime(2025, 1, 1, 12, 30),), [dt.date(2025, 1, 1)]),
        ([pd.Timestamp("2025-02-03")], [dt.date(2025, 2, 3)]),
        ("", None),
        (" , ", None),
        ([], None),
        (None, None),
    ],
)
def test_dates_coerce(value, expected):
    assert Param("period_starts", "dates").coerce(value) == expected


@pytest.mark.parametrize("value", ["2025-13-01", "2025-01-01,monday", [None], ["x"], dt.date(2025, 1, 1), 5, 1.5])
def test_dates_refuse_what_is_not_a_list_of_dates(value):
    with pytest.raises(ValueError, match="period_starts.*dates YYYY-MM-DD"):
        Param("period_starts", "dates").coerce(value)


def _query_file(tmp_path, spec: str):
    path = tmp_path / "q.sql"
    path.write_text(
        "-- title: t\n-- description: d\n-- site_free: true\n-- params:\n"
        f"--   days: {spec}\nselect unnest($days) as day\n"
    )
    return path


def test_dates_in_a_header(tmp_path, demo_db):
    query = parse(_query_file(tmp_path, "{type: dates, default: [2025-01-01, '2025-02-01'], label: Days}"))
    assert query.params["days"].default == [dt.date(2025, 1, 1), dt.date(2025, 2, 1)]
    df = runner.run(demo_db, query, raw=True).data
    assert [d.date() for d in df["day"]] == [dt.date(2025, 1, 1), dt.date(2025, 2, 1)]
    df = runner.run(demo_db, query, {"days": "2024-12-31"}, raw=True).data
    assert [d.date() for d in df["day"]] == [dt.date(2024, 12, 31)]


def test_dates_with_a_bad_default_name_the_file(tmp_path):
    with pytest.raises(CatalogError, match=r"q\.sql: default of parameter days"):
        parse(_query_file(tmp_path, "{type: dates, default: ['2025-02-30']}"))
