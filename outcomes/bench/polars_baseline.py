"""The two headline measures in Polars on the base tables' Parquet files, for the benchmark to compare with.

Each function follows the definition in the header of its query file (queries/stepdown_rate.sql,
queries/engagement_by_week.sql), as pandas_baseline does, and returns the same columns in the same order.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import polars as pl

from outcomes.bench.pandas_baseline import COLUMNS, Z

# filter argument -> (table, column), as in the macro filtered() of queries/_build/00_macros.sql
_LISTS = {
    "sites": "site",
    "payers": "payer",
    "tracks": "track",
    "genders": "gender",
    "substances": "primary_substance",
    "living": "living_situation",
    "employment": "employment",
}


def read_tables(folder: str | Path) -> dict[str, pl.DataFrame]:
    """The base tables from `folder`/NAME.parquet, only the columns the measures use."""
    folder = Path(folder)
    return {name: pl.read_parquet(folder / f"{name}.parquet", columns=cols) for name, cols in COLUMNS.items()}


def _age_band() -> pl.Expr:
    age = pl.col("admit_date").dt.year() - pl.col("birth_year")
    bands = pl.when(pl.col("birth_year").is_null()).then(pl.lit("unknown"))
    for limit, band in ((17, "under 18"), (25, "18-25"), (34, "26-34"), (44, "35-44"), (54, "45-54"), (64, "55-64")):
        bands = bands.when(age <= limit).then(pl.lit(band))
    return bands.otherwise(pl.lit("65+"))


def filtered_episodes(t: dict, episodes: pl.LazyFrame, age_bands=None, co_occurring=None, **lists) -> pl.LazyFrame:
    """`episodes` joined to their client, kept when they match every given filter (None: all)."""
    e = episodes.join(t["clients"].lazy(), on="client_id", how="inner")
    for name, values in lists.items():
        if values is not None:
            e = e.filter(pl.col(_LISTS[name]).is_in(list(values)))
    if age_bands is not None:
        e = e.filter(_age_band().is_in(list(age_bands)))
    if co_occurring is not None:
        e = e.filter(pl.col("co_occurring_mh") == co_occurring)
    return e


def _wilson(x: pl.Expr, n: pl.Expr, sign: int) -> pl.Expr:
    p = x / n
    bound = (p + Z**2 / (2 * n) + sign * Z * (p * (1 - p) / n + Z**2 / (4 * n * n)).sqrt()) / (1 + Z**2 / n)
    edge = (x == 0) if sign < 0 else (x == n)
    return pl.when(edge).then(pl.lit(0.0 if sign < 0 else 1.0)).otherwise(bound)


def stepdown_rate(
    t: dict,
    as_of: dt.date,
    window_days: int = 14,
    start=None,
    end=None,
    grain: str = "month",
    period_starts=None,
    **filters,
) -> pd.DataFrame:
    """Residential discharges by month (or in all, or by period) and how many reached an attended IOP session
    within the window; see queries/stepdown_rate.sql."""
    enr = t["enrollments"].lazy()
    dd = pl.col("discharge_date")
    keep = (dd <= as_of) & (dd + pl.duration(days=window_days) <= as_of)
    keep &= pl.col("discharge_reason").is_not_null() & ~pl.col("discharge_reason").is_in(["deceased", "incarcerated"])
    if start is not None:
        keep &= dd >= start
    if end is not None:
        keep &= dd <= end
    starts = sorted(period_starts or [])
    if grain == "periods":
        keep &= dd >= starts[0] if starts else pl.lit(False)
    residential = enr.filter((pl.col("level_of_care") == "residential") & dd.is_not_null())
    d = filtered_episodes(t, residential, **filters).filter(keep).select("episode_id", "client_id", "discharge_date")

    # direct transfers: another residential or withdrawal management admission on the discharge day or the next
    stays = enr.filter(pl.col("level_of_care").is_in(["residential", "withdrawal_management"]))
    transfers = (
        d.join(stays.select("client_id", pl.col("episode_id").alias("next_id"), "admit_date"), on="client_id")
        .filter(
            (pl.col("next_id") != pl.col("episode_id"))
            & (pl.col("admit_date") >= dd)
            & (pl.col("admit_date") <= dd + pl.duration(days=1))
        )
        .select("episode_id")
        .unique()
    )
    iop = enr.filter(pl.col("level_of_care") == "iop").select("episode_id", "client_id")
    iop_days = (
        t["attendance"]
        .lazy()
        .filter(pl.col("status") == "attended")
        .join(iop, on="episode_id")
        .select("client_id", "session_date")
        .unique()
    )
    first = (
        d.join(iop_days, on="client_id")
        .filter(pl.col("session_date") >= dd)
        .group_by("episode_id")
        .agg((pl.col("session_date") - dd).dt.total_days().min().alias("days_to_iop"))
    )
    if grain == "month":
        month = dd.dt.truncate("1mo")
    elif grain == "periods":
        month = pl.lit(pl.Series(starts, dtype=pl.Date)).search_sorted(dd, side="right") - 1
        month = pl.lit(pl.Series(starts, dtype=pl.Date)).gather(month)
    else:
        month = pl.lit(None, dtype=pl.Date)
    x, n = pl.col("stepped_down").cast(pl.Float64), pl.col("eligible_discharges").cast(pl.Float64)
    out = (
        d.join(transfers, on="episode_id", how="anti")
        .join(first, on="episode_id", how="left")
        .select(month.alias("month"), (pl.col("days_to_iop") <= window_days).fill_null(False).alias("stepped"))
        .group_by("month")
        .agg(
            pl.len().cast(pl.Int64).alias("eligible_discharges"),
            pl.col("stepped").sum().cast(pl.Int64).alias("stepped_down"),
        )
        .sort("month")
        .with_columns(
            (x / n).alias("stepdown_rate"), _wilson(x, n, -1).alias("ci_low"), _wilson(x, n, 1).alias("ci_high")
        )
    )
    return out.collect().to_pandas()


def engagement_by_week(t: dict, max_weeks: int = 12, start=None, end=None, **filters) -> pd.DataFrame:
    """IOP attendance by week since admission; see queries/engagement_by_week.sql."""
    admit = pl.col("admit_date")
    keep = pl.col("level_of_care") == "iop"
    if start is not None:
        keep &= admit >= start
    if end is not None:
        keep &= admit <= end
    iop = filtered_episodes(t, t["enrollments"].lazy().filter(keep), **filters).select("episode_id", "admit_date")
    week = (pl.col("session_date") - admit).dt.total_days() // 7 + 1
    weeks = (
        t["attendance"]
        .lazy()
        .join(iop, on="episode_id")
        .filter((pl.col("session_date") >= admit) & (week <= max_weeks))
        .group_by("episode_id", week.alias("week"))
        .agg(
            (pl.col("status") != "program_cancelled").sum().alias("scheduled"),
            (pl.col("status") == "attended").sum().alias("attended"),
        )
        .filter(pl.col("scheduled") > 0)
    )
    out = (
        weeks.group_by("week")
        .agg(
            pl.col("scheduled").sum().cast(pl.Int64).alias("scheduled_sessions"),
            pl.col("attended").sum().cast(pl.Int64).alias("attended_sessions"),
            pl.len().cast(pl.Int64).alias("active_episodes"),
        )
        .sort("week")
        .with_columns(
            pl.col("week").cast(pl.Int64),
            (pl.col("attended_sessions") / pl.col("scheduled_sessions")).alias("attendance_rate"),
        )
    )
    return out.collect().to_pandas()


MEASURES = {"stepdown_rate": stepdown_rate, "engagement_by_week": engagement_by_week}
