"""Two catalog measures written in plain pandas on the four base tables, for the benchmark to compare with.

Each function follows the definition in the header of its query file (queries/stepdown_rate.sql,
queries/engagement_by_week.sql) and returns the same columns, in the same order, as the raw query result.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

# Only the columns the two measures use are read.
COLUMNS = {
    "clients": [
        "client_id",
        "birth_year",
        "gender",
        "primary_substance",
        "co_occurring_mh",
        "living_situation",
        "employment",
    ],
    "enrollments": [
        "episode_id",
        "client_id",
        "site",
        "level_of_care",
        "admit_date",
        "discharge_date",
        "discharge_reason",
        "payer",
        "track",
    ],
    "attendance": ["episode_id", "session_date", "status"],
}
Z = 1.959963984540054


def read_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """The base tables from `folder`/NAME.parquet, with dates as datetime64; the sessions' episode id and
    status as categoricals (100M sessions as text would take tens of gigabytes)."""
    folder = Path(folder)
    return {
        name: pd.read_parquet(
            folder / f"{name}.parquet",
            columns=cols,
            to_pandas_kwargs={"date_as_object": False},
            read_dictionary=["episode_id", "status"] if name == "attendance" else None,
        )
        for name, cols in COLUMNS.items()
    }


def _age_band(admit: pd.Series, birth_year: pd.Series) -> np.ndarray:
    age = admit.dt.year - birth_year
    return np.select(
        [birth_year.isna(), age < 18, age <= 25, age <= 34, age <= 44, age <= 54, age <= 64],
        ["unknown", "under 18", "18-25", "26-34", "35-44", "45-54", "55-64"],
        "65+",
    )


def filtered_episodes(
    t: dict[str, pd.DataFrame],
    sites=None,
    payers=None,
    genders=None,
    age_bands=None,
    substances=None,
    co_occurring=None,
    living=None,
    employment=None,
    tracks=None,
) -> pd.DataFrame:
    """Episodes joined to their client, kept when they match every given filter (None: all)."""
    e = t["enrollments"].merge(t["clients"], on="client_id", how="inner")
    keep = pd.Series(True, index=e.index)
    for values, column in (
        (sites, "site"),
        (payers, "payer"),
        (genders, "gender"),
        (substances, "primary_substance"),
        (living, "living_situation"),
        (employment, "employment"),
        (tracks, "track"),
    ):
        if values is not None:
            keep &= e[column].isin(values)
    if age_bands is not None:
        keep &= pd.Series(_age_band(e["admit_date"], e["birth_year"]), index=e.index).isin(age_bands)
    if co_occurring is not None:
        keep &= e["co_occurring_mh"].notna() & (e["co_occurring_mh"] == co_occurring)
    return e[keep]


def _wilson(x: pd.Series, n: pd.Series, sign: int) -> pd.Series:
    p = x / n
    bound = (p + Z**2 / (2 * n) + sign * Z * np.sqrt(p * (1 - p) / n + Z**2 / (4 * n * n))) / (1 + Z**2 / n)
    edge = (x == 0) if sign < 0 else (x == n)
    return bound.where(~edge, 0.0 if sign < 0 else 1.0)


def _day(value) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def stepdown_rate(
    t: dict[str, pd.DataFrame],
    as_of: dt.date,
    window_days: int = 14,
    start=None,
    end=None,
    grain: str = "month",
    period_starts=None,
    **filters,
) -> pd.DataFrame:
    """Residential discharges by month (grain month), in all (grain period, month empty) or by period (grain
    periods: month is the latest of period_starts on or before the discharge), and how many reached an attended
    IOP session within the window."""
    enr = t["enrollments"]
    window = pd.Timedelta(days=window_days)
    as_of, start, end = _day(as_of), _day(start), _day(end)
    discharges = enr[(enr["level_of_care"] == "residential") & enr["discharge_date"].notna()]

    # direct transfers: another residential or withdrawal management admission on the discharge day or the next
    stays = enr[enr["level_of_care"].isin(["residential", "withdrawal_management"])]
    pairs = discharges[["episode_id", "client_id", "discharge_date"]].merge(
        stays[["episode_id", "client_id", "admit_date"]], on="client_id", suffixes=("", "_next")
    )
    pairs = pairs[
        (pairs["episode_id_next"] != pairs["episode_id"])
        & (pairs["admit_date"] >= pairs["discharge_date"])
        & (pairs["admit_date"] <= pairs["discharge_date"] + pd.Timedelta(days=1))
    ]
    transfers = set(pairs["episode_id"])

    # days from discharge to the client's first attended IOP session on or after the discharge date
    att = t["attendance"]
    client_of = enr.loc[enr["level_of_care"] == "iop"].set_index("episode_id")["client_id"]
    attended = att[(att["status"] == "attended") & att["episode_id"].isin(client_of.index)]
    clients = pd.CategoricalDtype(enr["client_id"].unique())
    iop_days = pd.DataFrame(
        {
            "client_id": attended["episode_id"].map(client_of).astype(clients),
            "session_date": attended["session_date"],
        }
    ).drop_duplicates()
    later = (
        discharges[["episode_id", "client_id", "discharge_date"]]
        .astype({"client_id": clients})
        .merge(iop_days, on="client_id")
    )
    later = later[later["session_date"] >= later["discharge_date"]]
    days_to_iop = (later["session_date"] - later["discharge_date"]).dt.days.groupby(later["episode_id"]).min()

    index_ids = filtered_episodes(t, **filters)
    index_ids = index_ids.loc[index_ids["level_of_care"] == "residential", "episode_id"]
    d = discharges[discharges["episode_id"].isin(index_ids)]
    keep = (
        (d["discharge_date"] <= as_of)
        & (d["discharge_date"] + window <= as_of)
        & ~d["episode_id"].isin(transfers)
        & d["discharge_reason"].notna()
        & ~d["discharge_reason"].isin(["deceased", "incarcerated"])
    )
    if start is not None:
        keep &= d["discharge_date"] >= start
    if end is not None:
        keep &= d["discharge_date"] <= end
    starts = np.sort(pd.to_datetime(list(period_starts or [])).to_numpy(dtype="datetime64[ns]"))
    if grain == "periods":
        keep &= d["discharge_date"] >= starts[0] if len(starts) else False
    d = d[keep]
    stepped = d["episode_id"].map(days_to_iop).le(window_days)

    if grain == "month":
        month = d["discharge_date"].dt.to_period("M").dt.start_time
    elif grain == "periods":
        at = np.searchsorted(starts, d["discharge_date"].to_numpy(dtype="datetime64[ns]"), side="right") - 1
        month = pd.Series(starts[at] if len(starts) else [], index=d.index, dtype="datetime64[ns]")
    else:
        month = pd.Series(pd.NaT, d.index)
    out = (
        pd.DataFrame({"month": month, "stepped": stepped})
        .groupby("month", dropna=False)
        .agg(eligible_discharges=("stepped", "size"), stepped_down=("stepped", "sum"))
        .reset_index()
        .sort_values("month", ignore_index=True)
    )
    out = out.astype({"eligible_discharges": "int64", "stepped_down": "int64"})
    x, n = out["stepped_down"].astype(float), out["eligible_discharges"].astype(float)
    out["stepdown_rate"] = x / n
    out["ci_low"] = _wilson(x, n, -1)
    out["ci_high"] = _wilson(x, n, 1)
    return out


def engagement_by_week(
    t: dict[str, pd.DataFrame], max_weeks: int = 12, start=None, end=None, **filters
) -> pd.DataFrame:
    """IOP attendance by week since admission: scheduled and attended sessions, active episodes, rate."""
    start, end = _day(start), _day(end)
    iop = filtered_episodes(t, **filters)
    keep = iop["level_of_care"] == "iop"
    if start is not None:
        keep &= iop["admit_date"] >= start
    if end is not None:
        keep &= iop["admit_date"] <= end
    iop = iop.loc[keep, ["episode_id", "admit_date"]]

    att = t["attendance"]
    s = att[att["episode_id"].isin(iop["episode_id"])]
    admit = pd.to_datetime(s["episode_id"].map(iop.set_index("episode_id")["admit_date"]).astype("datetime64[ms]"))
    s = pd.DataFrame(
        {
            "episode_id": s["episode_id"],
            "week": (s["session_date"] - admit).dt.days // 7 + 1,
            "scheduled": s["status"] != "program_cancelled",
            "attended": s["status"] == "attended",
        }
    )
    s = s[(s["week"] >= 1) & (s["week"] <= max_weeks)]  # week 1 and on: sessions on or after admission
    weeks = s.groupby(["episode_id", "week"], observed=True).agg(
        scheduled=("scheduled", "sum"), attended=("attended", "sum")
    )
    weeks = weeks[weeks["scheduled"] > 0].reset_index()
    out = (
        weeks.groupby("week")
        .agg(
            scheduled_sessions=("scheduled", "sum"),
            attended_sessions=("attended", "sum"),
            active_episodes=("episode_id", "size"),
        )
        .reset_index()
        .sort_values("week", ignore_index=True)
    )
    out = out.astype(
        {"week": "int64", "scheduled_sessions": "int64", "attended_sessions": "int64", "active_episodes": "int64"}
    )
    out["attendance_rate"] = out["attended_sessions"] / out["scheduled_sessions"]
    return out


MEASURES = {"stepdown_rate": stepdown_rate, "engagement_by_week": engagement_by_week}


def same_rows(pandas_df: pd.DataFrame, duckdb_df: pd.DataFrame, rtol: float = 1e-12) -> tuple[bool, str]:
    """Whether two results hold the same rows: same columns, keys and counts exactly, rates to `rtol`."""
    if list(pandas_df.columns) != list(duckdb_df.columns):
        return False, f"columns differ: {list(pandas_df.columns)} vs {list(duckdb_df.columns)}"
    if len(pandas_df) != len(duckdb_df):
        return False, f"{len(pandas_df)} rows vs {len(duckdb_df)}"
    worst = 0.0
    for col in pandas_df.columns:
        a, b = pandas_df[col].reset_index(drop=True), duckdb_df[col].reset_index(drop=True)
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            a, b = a.astype(float).to_numpy(), b.astype(float).to_numpy()
            if not (np.isnan(a) == np.isnan(b)).all():
                return False, f"{col}: missing values differ"
            ok = ~np.isnan(a)
            diff = np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-300)
            worst = max(worst, float(diff.max(initial=0.0)))
            if worst > rtol:
                return False, f"{col}: values differ (largest relative difference {worst:.2e})"
        elif pd.api.types.is_datetime64_any_dtype(a) or pd.api.types.is_datetime64_any_dtype(b):
            days = [pd.to_datetime(x).dt.strftime("%Y-%m-%d").fillna("") for x in (a, b)]
            if not (days[0] == days[1]).all():
                return False, f"{col}: dates differ"
        elif not (a.astype("int64") == b.astype("int64")).all():
            return False, f"{col}: values differ"
    return True, f"{len(pandas_df)} rows equal" + (f" (rates to {worst:.1e})" if worst else "")
