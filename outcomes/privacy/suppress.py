"""Small-cell suppression: the one place that decides what may be shown or exported."""

from __future__ import annotations

import numpy as np
import pandas as pd

LOW, HIGH = 1, 10  # counts from 1 to 10 are hidden; zero is shown
SCREEN_MARK = "<11"


class UnclassifiedColumn(Exception):
    """A numeric result column has no suppression role, so it cannot be shown safely."""


def _small(values: pd.Series) -> pd.Series:
    v = pd.to_numeric(values, errors="coerce")
    return (v >= LOW) & (v <= HIGH)


def _ns(n) -> list[str]:
    """A stat's n: one column or a list of them."""
    return list(n) if isinstance(n, (list, tuple)) else [n]


def roles(df: pd.DataFrame, spec: dict) -> dict[str, str]:
    """Each column's role: key, count, rate or stat. Numeric columns must be declared in `spec`."""
    out = {}
    declared = {c: "count" for c in spec.get("counts", [])}
    declared |= {c: "rate" for c in (spec.get("rates") or {})}
    declared |= {c: "stat" for c in (spec.get("stats") or {})}
    declared |= {c: "key" for c in spec.get("keys", [])}
    for col in df.columns:
        if col in declared:
            out[col] = declared[col]
        elif pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
            raise UnclassifiedColumn(f"numeric column {col!r} has no suppression role (declare it under suppress: counts, rates, stats or keys)")
        else:
            out[col] = "key"
    return out


def suppress(df: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (table with small cells set to missing, boolean mask of the cells hidden).

    A count from 1 to 10 is hidden. A rate (declared as `rate: [numerator, denominator]`) is hidden when its
    numerator, denominator or denominator - numerator is from 1 to 10. A stat (`stat: n_column`, or a list of
    n columns) is hidden when an n is from 1 to 10. Hiding uses the raw counts, so a hidden count still hides
    its rates. A declared `curve` is published in coarse steps (`curve_mask`).

    Then complementary suppression (`complement`) hides more counts until no hidden cell can be worked out
    from the shown ones through the table's sums, and every rate or stat whose counts are hidden is hidden.
    """
    roles(df, spec)
    out = df.copy()
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    for col in spec.get("counts", []):
        if col in df:
            mask[col] = _small(df[col])
    for col, (num, den) in (spec.get("rates") or {}).items():
        if col in df:
            mask[col] = _small(df[num]) | _small(df[den]) | _small(pd.to_numeric(df[den]) - pd.to_numeric(df[num]))
    for col, n in (spec.get("stats") or {}).items():
        if col in df:
            mask[col] = np.logical_or.reduce([_small(df[c]) for c in _ns(n)])
    mask = curve_mask(df, mask, spec.get("curve"))
    mask = complement(df, mask, spec)
    if spec.get("curve"):
        estimate = spec["curve"]["estimate"]
        out[estimate] = pd.to_numeric(out[estimate]).round(CURVE_DECIMALS)
    for col in df.columns:
        if mask[col].any():
            if pd.api.types.is_integer_dtype(out[col]):
                out[col] = out[col].astype("Int64")
            elif pd.api.types.is_numeric_dtype(out[col]):
                out[col] = out[col].astype("float64")
            else:
                out[col] = out[col].astype(object)
            out.loc[mask[col], col] = pd.NA if str(out[col].dtype) == "Int64" else np.nan
    return out, mask


REST = "~"  # prefix of a derived count that is not a column: the rest of a rate's denominator


def relations(df: pd.DataFrame, spec: dict) -> tuple[list[list[tuple[tuple[int, str], float]]], dict[str, np.ndarray]]:
    """The sums a reader can use to work hidden cells back out: (equations, values).

    Each equation is a list of (cell, coefficient) adding up to zero; a cell is (row position, column). Declared
    under `suppress:` in the query header:
      totals: {total: [part, ...]}   in every row, total = the sum of the parts (e.g. discharges by reason);
                                     one part may be a count that is not shown, named with a leading "~"
      total_rows: {key: marker}      the row whose `key` column holds `marker` is, count by count, the sum of
                                     the other rows that share its remaining keys (a total or margin row)
    and implied by every rate over two counts: denominator = numerator + rest, where the rest (e.g. referred
    but not admitted) is not shown but is a count too, named "~denominator-numerator" here.
    `values` holds every count column and every rest as floats (NaN where missing).
    """
    counts = [c for c in spec.get("counts", []) if c in df]
    values = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64") for c in counts}
    rows = range(len(df))
    eqs: list[list[tuple[tuple[int, str], float]]] = []
    for total, parts in (spec.get("totals") or {}).items():
        unshown = [p for p in parts if p.startswith(REST)]
        if total in values and len(unshown) <= 1 and all(p in values for p in parts if p not in unshown):
            if unshown:  # a part that is not a column, e.g. client-cancelled sessions: total less the others
                values[unshown[0]] = values[total] - sum(values[p] for p in parts if p not in unshown)
            eqs += [[((i, total), 1.0)] + [((i, p), -1.0) for p in parts] for i in rows]
    pairs = []
    for num, den in (spec.get("rates") or {}).values():
        if num in values and den in values and (num, den) not in pairs:
            pairs.append((num, den))
    for num, den in pairs:
        rest = f"{REST}{den}-{num}"
        values[rest] = values[den] - values[num]
        eqs += [[((i, den), 1.0), ((i, num), -1.0), ((i, rest), -1.0)] for i in rows]
    for key, marker in (spec.get("total_rows") or {}).items():
        if key not in df:
            continue
        others = [c for c, r in roles(df, spec).items() if r == "key" and c != key]
        is_total = (df[key].astype(object) == marker).to_numpy()
        groups = df.groupby(others, dropna=False, sort=False).indices.values() if others else [np.arange(len(df))]
        for idx in groups:
            totals = [int(i) for i in idx if is_total[i]]
            parts = [int(i) for i in idx if not is_total[i]]
            if len(totals) == 1 and parts:
                eqs += [[((totals[0], c), 1.0)] + [((p, c), -1.0) for p in parts] for c in counts]
    eqs = [eq for eq in eqs if all(np.isfinite(values[c][i]) for (i, c), _ in eq)]
    return eqs, values


def _determined(a: np.ndarray) -> np.ndarray:
    """For each unknown (column of `a`), whether a·x = b fixes its value: the null space of `a` is zero there."""
    if not a.any():
        return np.zeros(a.shape[1], dtype=bool)
    _, s, vt = np.linalg.svd(a)
    rank = int((s > s.max() * max(a.shape) * 1e-12).sum())
    null = vt[rank:]
    if not len(null):
        return np.ones(a.shape[1], dtype=bool)
    return (np.abs(null) < 1e-9).all(axis=0)


def _protect(eqs, values: dict, hidden: dict, order: dict) -> None:
    """Hide more cells of one connected set of equations until no hidden cell or small rest is determined."""
    cells = sorted({cell for eq in eqs for cell, _ in eq}, key=lambda c: (c[0], order.get(c[1], -1), c[1]))
    virtual = lambda c: c[1].startswith(REST)  # noqa: E731
    while True:
        unknown = [c for c in cells if virtual(c) or hidden[c[1]][c[0]]]
        protect = [c for c in unknown if not virtual(c) or LOW <= values[c[1]][c[0]] <= HIGH]
        if not protect:
            return
        pos = {c: k for k, c in enumerate(unknown)}
        a = np.zeros((len(eqs), len(unknown)))
        for r, eq in enumerate(eqs):
            for cell, coef in eq:
                if cell in pos:
                    a[r, pos[cell]] += coef
        fixed = _determined(a)
        exposed = [c for c in protect if fixed[pos[c]]]
        if not exposed:
            return
        target = exposed[0]

        def shown(eq):
            return [(cell, coef) for cell, coef in eq if not virtual(cell) and not hidden[cell[1]][cell[0]]]

        def rank(item):  # parts before totals, non-zero before zero, then smallest
            (i, col), coef = item
            v = values[col][i]
            return (coef > 0, v == 0, v, order[col], i)

        def frees_target(cell) -> bool:
            col = np.zeros((len(eqs), 1))
            for r, eq in enumerate(eqs):
                col[r, 0] = sum(coef for c, coef in eq if c == cell)
            return not _determined(np.hstack([a, col]))[pos[target]]

        mine = sorted((eq for eq in eqs if any(cell == target for cell, _ in eq)),
                      key=lambda eq: sum(1 for cell, _ in eq if cell in pos))
        nearby = sorted({item[0]: item for eq in mine for item in shown(eq)}.values(), key=rank)
        # the first candidate that alone frees the exposed cell; else the best part of its tightest sum
        choice = next((item for item in nearby if frees_target(item[0])), None)
        choice = choice or next((min(shown(eq), key=rank) for eq in mine if shown(eq)), None)
        if choice is None:
            anywhere = [item for eq in eqs for item in shown(eq)]
            if not anywhere:
                return  # everything in these sums is hidden already
            choice = min(anywhere, key=rank)
        (i, col), _ = choice
        hidden[col][i] = True


def complement(df: pd.DataFrame, mask: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Complementary suppression: widen the primary `mask` so that hidden cells stay hidden.

    While a hidden count, or a small (1-10) rest of a rate's denominator, can be solved from the shown counts
    through the table's sums (see `relations`), hide one more shown count in the sum that gives it away: the
    smallest non-zero part, a total only when no part is left. Then every rate whose numerator or denominator
    is hidden, and every stat whose n is hidden, is hidden too, so a rate never gives its counts back.
    """
    mask = mask.copy()
    counts = [c for c in spec.get("counts", []) if c in df]
    eqs, values = relations(df, spec)
    if eqs:
        order = {c: k for k, c in enumerate(counts)}
        hidden = {c: mask[c].to_numpy(dtype=bool, copy=True) for c in counts}
        parent: dict = {}

        def find(x):
            while parent.setdefault(x, x) != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for eq in eqs:
            first = find(eq[0][0])
            for cell, _ in eq[1:]:
                parent[find(cell)] = first
        groups: dict = {}
        for eq in eqs:
            groups.setdefault(find(eq[0][0]), []).append(eq)

        def at_risk(eq):
            return any(hidden[c][i] if not c.startswith(REST) else LOW <= values[c][i] <= HIGH for (i, c), _ in eq)

        for group in groups.values():
            if any(at_risk(eq) for eq in group):
                _protect(group, values, hidden, order)
        for c in counts:
            mask[c] = hidden[c]
    for col, (num, den) in (spec.get("rates") or {}).items():
        if col in mask and num in mask and den in mask:
            mask[col] = mask[col] | mask[num] | mask[den]
    for col, n in (spec.get("stats") or {}).items():
        if col in mask and all(c in mask for c in _ns(n)):
            mask[col] = np.logical_or.reduce([mask[col]] + [mask[c] for c in _ns(n)])
    return mask


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
        tail = ev[idx][np.flatnonzero(shown).max() + 1:].sum() if shown.any() else ev[idx].sum()
        hide["total"][idx] = not _safe(tail)
    for role, col in ((r, curve.get(r)) for r in hide):
        if col in mask:
            mask.loc[order, col] = mask.loc[order, col].to_numpy() | hide[role]
    return mask


def for_screen(df: pd.DataFrame, mask: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Text version for tables: hidden counts read "<11", hidden rates and stats read "suppressed"."""
    out = df.astype(object).where(df.notna(), None)
    counts = set(spec.get("counts", []))
    for col in df.columns:
        if mask[col].any():
            out.loc[mask[col], col] = SCREEN_MARK if col in counts else "suppressed"
    return out
