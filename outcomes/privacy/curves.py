"""Survival-style curves: the days a curve may be published on, so that no daily count can be given back."""

from __future__ import annotations

import numpy as np
import pandas as pd

from outcomes.privacy.cells import HIGH, LOW

CURVE_DECIMALS = 3  # a published curve value is rounded, so its exact fraction cannot name the days' counts
CURVE_KEYS = ("by", "x", "at_risk", "events", "estimate")


def _safe(count) -> bool:
    return not LOW <= count <= HIGH


def published_points(at_risk: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which days of one curve (rows in day order) may be published, and on which of them the day's events may be.

    Walking the days, a day is published when, since the last published day a: the events on days a+1..b add
    up to 0 or 11+, the exits (events and censorings) on days a..b-1 add up to 0 or 11+, at_risk is 11+, and,
    when b is the day after a and a's own events are known, a's censorings are 0 or 11+. A day's own events
    are known (and shown) only when the day before was published too. The first day's at_risk, the curve's
    population, is known from the start, as if a day before it had been published with no events.
    """
    shown = np.zeros(len(at_risk), dtype=bool)
    own = np.zeros(len(at_risk), dtype=bool)
    last, last_n, last_events = -1, at_risk[0] if len(at_risk) else 0, 0
    since = 0
    for b in range(len(at_risk)):
        since += events[b]
        if at_risk[b] <= HIGH:
            break  # at_risk never rises, so nothing later can be shown
        exits = last_n - at_risk[b]
        ok = _safe(since) and _safe(exits)
        if b == last + 1 and last_events is not None:
            ok = ok and _safe(exits - last_events)
        if ok:
            shown[b], own[b] = True, b == last + 1
            last_events = since if own[b] else None
            last, last_n, since = b, at_risk[b], 0
    return shown, own


def curve_mask(df: pd.DataFrame, mask: pd.DataFrame, curve: dict | None) -> pd.DataFrame:
    """Widen `mask` so that a Kaplan-Meier style curve cannot give back a hidden daily count.

    `curve: {by: [group columns], x: day, at_risk: n column, events: event column, estimate: curve column,
    total: optional per-group event total}`. Each group's curve is shown only at its `published_points`; on other
    days its at_risk (except the first day's), events and estimate are hidden. Shown estimates are rounded to
    3 decimals. A `total` repeated on each row is hidden when the events after the last published day are 1-10,
    since it would give them back.
    """
    if not curve or df.empty:
        return mask
    mask = mask.copy()
    by = [c for c in curve["by"] if c in df]
    order = df.sort_values([*by, curve["x"]], kind="stable").index
    groups = df.loc[order].groupby(by, dropna=False, sort=False).indices.values() if by else [np.arange(len(df))]
    at = pd.to_numeric(df.loc[order, curve["at_risk"]]).to_numpy(dtype="int64")
    ev = pd.to_numeric(df.loc[order, curve["events"]]).to_numpy(dtype="int64")
    hide = {c: np.zeros(len(df), dtype=bool) for c in ("at_risk", "events", "estimate", "total")}
    for idx in groups:
        shown, own = published_points(at[idx], ev[idx])
        hide["at_risk"][idx] = ~shown
        hide["at_risk"][idx[0]] = False
        hide["events"][idx] = ~(shown & own)
        hide["estimate"][idx] = ~shown
        tail = ev[idx][np.flatnonzero(shown).max() + 1 :].sum() if shown.any() else ev[idx].sum()
        hide["total"][idx] = not _safe(tail)
    for role, col in ((r, curve.get(r)) for r in hide):
        if col in mask:
            mask.loc[order, col] = mask.loc[order, col].to_numpy() | hide[role]
    return mask
