"""Small statistics for the dashboard: Wilson intervals, p-charts and Kaplan-Meier retention curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

Z95 = 1.959963984540054
# A rate or statistic over fewer than this many is unstable: shown, but marked (hollow, dotted, in brackets).
UNSTABLE_BELOW = 30
D2 = 1.128  # bias constant d2 for moving ranges of two points


def _floats(values) -> np.ndarray:
    # via pandas so nullable integers and pd.NA become plain NaN floats
    return pd.Series([values] if np.ndim(values) == 0 else values).to_numpy(dtype=float, na_value=np.nan)


def wilson(successes, n, z: float = Z95):
    """Wilson score interval for successes/n; scalars, arrays and Series alike. n == 0 gives NaN bounds.

    Returns (low, high) as floats for scalar input, otherwise arrays (Series keeping the index).
    """
    index = next((v.index for v in (successes, n) if isinstance(v, pd.Series)), None)
    scalar = np.ndim(successes) == 0 and np.ndim(n) == 0
    x, m = np.broadcast_arrays(_floats(successes), _floats(n))
    if np.any((x < 0) | (x > m)):
        raise ValueError("successes must lie between 0 and n")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / m
        denom = 1 + z**2 / m
        centre = (p + z**2 / (2 * m)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / m + z**2 / (4 * m**2))
    low = np.where(m > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    high = np.where(m > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    # centre - half is only zero up to rounding when x == 0; make the bound exact
    low = np.where((x == 0) & (m > 0), 0.0, low)
    high = np.where((x == m) & (m > 0), 1.0, high)
    if scalar:
        return float(low[0]), float(high[0])
    if index is not None:
        return pd.Series(low, index=index), pd.Series(high, index=index)
    return low, high


def p_chart(events, n, method: str = "auto") -> pd.DataFrame:
    """p-chart with 3-sigma limits per point, optionally Laney p' for over-dispersed data.

    Centre p-bar = sum(events) / sum(n); limits p-bar +/- 3 * sqrt(p-bar(1 - p-bar)/n_i) * sigma_z,
    clipped to [0, 1]. sigma_z = mean moving range of z_i / 1.128 over consecutive rows with n > 0,
    z_i = (p_i - p-bar) / sqrt(p-bar(1 - p-bar)/n_i).
    method="auto" uses Laney when sigma_z > 1.0 and there are at least 3 rows with n > 0;
    "p" never does; "laney" always does when sigma_z can be computed (else falls back to "p").
    Rows with n == 0 get NaN p and limits and outside False.
    """
    if method not in ("auto", "p", "laney"):
        raise ValueError(f"unknown method {method!r}")
    index = next((v.index for v in (events, n) if isinstance(v, pd.Series)), None)
    x, m = _floats(events), _floats(n)
    if x.shape != m.shape:
        raise ValueError("events and n must have the same length")
    if np.any(np.isnan(x) | np.isnan(m)):
        raise ValueError("events and n must not be missing; use n = 0 for an empty period")
    if np.any((m < 0) | (x < 0) | (x > m)):
        raise ValueError("need 0 <= events <= n")
    used = m > 0
    pbar = x.sum() / m.sum() if m.sum() > 0 else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(used, x / m, np.nan)
        sd = np.where(used, np.sqrt(pbar * (1 - pbar) / m), np.nan)
        z = (p[used] - pbar) / sd[used]
    # sd is zero when p-bar is 0 or 1, so z and hence sigma_z are undefined there
    sigma_z = np.mean(np.abs(np.diff(z))) / D2 if z.size >= 2 and np.all(np.isfinite(z)) else np.nan
    laney = np.isfinite(sigma_z) and (method == "laney" or (method == "auto" and sigma_z > 1.0 and z.size >= 3))
    factor = sigma_z if laney else 1.0
    lcl = np.clip(pbar - 3 * sd * factor, 0.0, 1.0)
    ucl = np.clip(pbar + 3 * sd * factor, 0.0, 1.0)
    outside = used & ((p < lcl) | (p > ucl))  # NaN comparisons are False, so empty rows stay unflagged
    return pd.DataFrame(
        {
            "p": p,
            "center": np.where(used, pbar, np.nan),
            "lcl": lcl,
            "ucl": ucl,
            "outside": outside.astype(bool),
            "sigma_z": float(factor),
            "method": "laney" if laney else "p",
        },
        index=index,
    )


def kaplan_meier(durations, events, times=None, z: float = Z95) -> pd.DataFrame:
    """Kaplan-Meier product-limit estimate with right censoring (events: 1 = event, 0 = censored).

    One row per distinct duration, plus time 0 (survival 1.0 unless events happen at time 0).
    At tied times events count before censorings, so people censored at t are still at risk at t.
    ci_low/ci_high: Greenwood variance on the log(-log S) scale, clipped to [0, 1]; [1, 1] where
    survival is 1 and [0, 0] where it is 0.
    With `times`, returns the step function at those times (sorted, unique, >= 0): at_risk is the
    number with duration >= t, events/censored count the interval since the previous requested time.
    """
    d, e = _floats(durations), _floats(events)
    if d.shape != e.shape:
        raise ValueError("durations and events must have the same length")
    if np.any(np.isnan(d)) or np.any(d < 0):
        raise ValueError("durations must be non-negative and not missing")
    if not np.all(np.isin(e, (0.0, 1.0))):
        raise ValueError("events must be 0 (censored) or 1 (event)")
    grid = np.union1d([0.0], d)
    ev, ce = np.sort(d[e == 1]), np.sort(d[e == 0])

    def upto(x, t):  # how many of sorted x are <= t
        return np.searchsorted(x, t, side="right")

    at_risk = len(d) - np.searchsorted(np.sort(d), grid, side="left")
    n_event = upto(ev, grid) - np.searchsorted(ev, grid, side="left")
    n_cens = upto(ce, grid) - np.searchsorted(ce, grid, side="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(np.where(at_risk > 0, 1 - n_event / at_risk, 1.0))
        # Greenwood sum; infinite once the last person at risk has the event, handled below
        gw = np.cumsum(np.where(n_event > 0, n_event / (at_risk * (at_risk - n_event)), 0.0))
        se = np.sqrt(gw) / np.abs(np.log(survival))
        low = survival ** np.exp(z * se)
        high = survival ** np.exp(-z * se)
    low = np.where(survival >= 1, 1.0, np.where(survival <= 0, 0.0, low))
    high = np.where(survival >= 1, 1.0, np.where(survival <= 0, 0.0, high))
    frame = pd.DataFrame(
        {
            "time": grid,
            "at_risk": at_risk.astype(int),
            "events": n_event.astype(int),
            "censored": n_cens.astype(int),
            "survival": survival,
            "ci_low": np.clip(low, 0.0, 1.0),
            "ci_high": np.clip(high, 0.0, 1.0),
        }
    )
    if times is None:
        return frame
    t = np.unique(_floats(times))
    if np.any(np.isnan(t)) or np.any(t < 0):
        raise ValueError("times must be non-negative and not missing")
    row = np.searchsorted(grid, t, side="right") - 1
    return pd.DataFrame(
        {
            "time": t,
            "at_risk": (len(d) - np.searchsorted(np.sort(d), t, side="left")).astype(int),
            "events": np.diff(upto(ev, t), prepend=0).astype(int),
            "censored": np.diff(upto(ce, t), prepend=0).astype(int),
            "survival": survival[row],
            "ci_low": frame["ci_low"].to_numpy()[row],
            "ci_high": frame["ci_high"].to_numpy()[row],
        }
    )


def survival_at(km_frame: pd.DataFrame, t: float) -> tuple[float, int]:
    """Survival and number at risk at time t, read as a step function (last row with time <= t).

    Between rows, at_risk is that row's at_risk less its events and censorings; this is exact for a
    frame from kaplan_meier(..., times=None). Before the first row: survival 1.0 and its at_risk.
    """
    if t is None or np.isnan(t):
        raise ValueError("t must be a number")
    times = km_frame["time"].to_numpy(dtype=float)
    i = int(np.searchsorted(times, t, side="right")) - 1
    if i < 0:
        return 1.0, int(km_frame["at_risk"].iloc[0])
    row = km_frame.iloc[i]
    at_risk = row["at_risk"] if times[i] == t else row["at_risk"] - row["events"] - row["censored"]
    return float(row["survival"]), int(at_risk)


def median_survival(km_frame: pd.DataFrame) -> float | None:
    """Smallest time at which survival is <= 0.5, or None if the curve never gets there."""
    hit = km_frame.loc[km_frame["survival"] <= 0.5, "time"]
    return float(hit.iloc[0]) if len(hit) else None
