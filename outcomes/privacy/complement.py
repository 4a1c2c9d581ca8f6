"""Complementary suppression: hide more counts until no hidden small count can be narrowed from the sums."""

from __future__ import annotations

import numpy as np
import pandas as pd

from outcomes.privacy import ranges
from outcomes.privacy.cells import HIGH, LOW, n_columns, roles

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
    templates, values = _row_sums(df, spec)
    eqs = [[((i, c), k) for c, k in template] for template in templates for i in range(len(df))]
    eqs += _total_row_sums(df, spec)[0]
    eqs = [eq for eq in eqs if all(np.isfinite(values[c][i]) for (i, c), _ in eq)]
    return eqs, values


def _row_sums(df: pd.DataFrame, spec: dict) -> tuple[list[list[tuple[str, float]]], dict[str, np.ndarray]]:
    """The sums that hold within each row, as templates of (column, coefficient), and `values` (see relations)."""
    counts = [c for c in spec.get("counts", []) if c in df]
    values = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype="float64") for c in counts}
    templates: list[list[tuple[str, float]]] = []
    for total, parts in (spec.get("totals") or {}).items():
        unshown = [p for p in parts if p.startswith(REST)]
        if total in values and len(unshown) <= 1 and all(p in values for p in parts if p not in unshown):
            if unshown:  # a part that is not a column, e.g. client-cancelled sessions: total less the others
                values[unshown[0]] = values[total] - sum(values[p] for p in parts if p not in unshown)
            templates.append([(total, 1.0)] + [(p, -1.0) for p in parts])
    pairs = []
    for num, den in (spec.get("rates") or {}).values():
        if num in values and den in values and (num, den) not in pairs:
            pairs.append((num, den))
    for num, den in pairs:
        rest = f"{REST}{den}-{num}"
        values[rest] = values[den] - values[num]
        templates.append([(den, 1.0), (num, -1.0), (rest, -1.0)])
    return templates, values


def _total_row_sums(df: pd.DataFrame, spec: dict) -> tuple[list[list[tuple[tuple[int, str], float]]], np.ndarray]:
    """The sums across rows declared by `total_rows` (see relations), and which rows are total rows."""
    counts = [c for c in spec.get("counts", []) if c in df]
    eqs: list[list[tuple[tuple[int, str], float]]] = []
    total_row = np.zeros(len(df), dtype=bool)
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
                total_row[totals[0]] = True
                eqs += [[((totals[0], c), 1.0)] + [((p, c), -1.0) for p in parts] for c in counts]
    return eqs, total_row


# --- complementary suppression: protection by range ------------------------------------------------------

MIN_RANGE = 10  # without the labels, a protected value keeps a range of 10 or more: 11 or more possible values
MIN_RANGE_LABELLED = 9  # with the labels, as wide as "1–10" itself: a hidden 1-10 count can still be 1 and 10
SUM_RULE = True  # no sum's hidden cells may add up to a known 1 to 10
MAX_PAIRS = 40  # pairs of cells tried when no single cell protects
HEADLINE = 4  # the tier of a declared headline count: above every other (a hidden 0 is 3)
_SHOWN, _SMALL, _LARGE, _ZERO, _UNSHOWN = range(5)  # what the reader knows of a cell


def complement(df: pd.DataFrame, mask: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Complementary suppression: widen the primary `mask` until every small value is protected by range.

    The reader knows every shown cell, the table's sums (see `relations`), that counts are whole numbers of 0
    or more, which cells are hidden, and their labels (`reasons`): a count hidden as SMALL is 1 to 10, one
    hidden as COMPLEMENT is 0 or 11 and up. A protected value is a hidden count of 1 to 10, or a count never
    shown (the rest of a rate's denominator, an unshown part of a total) of 1 to 10. Its range is its largest
    less its smallest value over the whole-number solutions of the sums. It is protected when:
      - without the labels, its range is MIN_RANGE (10) or more: at least 11 values stay possible;
      - with the labels, its range is MIN_RANGE_LABELLED (9) or more, every value in it possible: a count
        labelled "1–10" can still be any of 1 to 10, so the table tells no more than its label (where the
        labels alone allow less, as for the parts of a total of 1-10, the range must be as wide as hiding
        every count of its sums would leave it);
      - no sum whose hidden cells all have one sign (the hidden parts of a shown total) adds up to 1-10.
    `ranges.walk` measures ranges from the true values by moves that keep every sum, each point reached a
    solution the reader cannot rule out, so a value found protected is protected. With the labels it keeps a
    hidden 11+ count at 11 and up and a hidden 0 at 0 (a part of what "0 or 11 and up" allows, so again no
    wider than the reader's range); that part is convex and, for these sums (totals of parts, rates over their
    denominators, margins: all their circuits are 0/1/-1), every whole value between its ends is possible. The
    bounds of the linear relaxation would not do: they are outer bounds, wider than or equal to the reader's.

    While some value is not protected, one more shown count of its sums is hidden: the cheapest that protects
    it on its own, else the cheapest pair that does, else the one that widens its range most. Cheapest means
    a plain part before a rate's numerator, before a total or denominator (which would hide the row's headline
    or every rate), zero last (a hidden 0 protects nothing), then the smallest value; a declared `headline`
    count (what the chart is about) only when no other cell or pair of cells protects. Hiding more never narrows
    a range, so the cells hidden for one value keep protecting the others. Then every rate whose numerator or
    denominator is hidden, and every stat whose n is hidden, is hidden too, so a rate never gives its counts
    back.
    """
    mask = mask.copy()
    counts = [c for c in spec.get("counts", []) if c in df]
    templates, values = _row_sums(df, spec)
    across, total_row = _total_row_sums(df, spec)
    if templates or across:
        hidden = {c: mask[c].to_numpy(dtype=bool, copy=True) for c in counts}
        tier = _tiers(spec)
        if across:
            _protect_cells(relations(df, spec)[0], values, hidden, tier, total_row)
        else:
            _protect_rows(templates, values, hidden, tier, len(df))
        for c in counts:
            mask[c] = hidden[c]
    follow = {col: [n, d] for col, (n, d) in (spec.get("rates") or {}).items()}
    follow |= {col: n_columns(n) for col, n in (spec.get("stats") or {}).items()}
    for col, ns in follow.items():
        if col in mask and all(c in mask for c in ns):
            mask[col] = np.logical_or.reduce([mask[c].to_numpy(dtype=bool) for c in [col, *ns]])
    return mask


def _tiers(spec: dict) -> dict[str, int]:
    """What hiding a count costs besides itself: 0 a plain part, 1 a rate's numerator, 2 a total or denominator,
    HEADLINE a count the chart is about (`headline: [...]`), hidden only when no other cell or pair protects."""
    tier: dict[str, int] = {c: HEADLINE for c in spec.get("headline") or []}
    for num, den in (spec.get("rates") or {}).values():
        tier[num] = max(tier.get(num, 0), 1)
        tier[den] = max(tier.get(den, 0), 2)
    for total in spec.get("totals") or {}:
        tier[total] = max(tier.get(total, 0), 2)
    return tier


def _protect_rows(templates, values: dict, hidden: dict, tier: dict, n: int) -> None:
    """Complementary suppression for sums that hold within each row: all rows at once, by their pattern."""
    cols = list(dict.fromkeys(c for template in templates for c, _ in template))
    where = {c: j for j, c in enumerate(cols)}
    t = np.zeros((len(templates), len(cols)))
    for e, template in enumerate(templates):
        for c, coef in template:
            t[e, where[c]] += coef
    v = np.column_stack([values[c] for c in cols]) if n else np.zeros((0, len(cols)))
    present = np.column_stack(
        [np.isfinite(v[:, [where[c] for c, _ in template]]).all(axis=1) for template in templates]
    )
    virtual = np.array([c.startswith(REST) for c in cols])
    h = np.column_stack([hidden[c] if c in hidden else np.zeros(n, dtype=bool) for c in cols])
    h[:, virtual] = False
    cost = np.broadcast_to(np.array([tier.get(c, 0) for c in cols]), v.shape).copy()
    _greedy(t, present, np.nan_to_num(v), virtual, h, cost)
    for j, c in enumerate(cols):
        if c in hidden:
            hidden[c] = h[:, j]


def _protect_cells(eqs, values: dict, hidden: dict, tier: dict, total_row: np.ndarray) -> None:
    """Complementary suppression for sums that run across rows: one connected set of sums at a time."""
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
    for group in groups.values():
        cells = sorted({cell for eq in group for cell, _ in eq}, key=lambda c: (c[0], c[1]))
        where = {cell: j for j, cell in enumerate(cells)}
        t = np.zeros((len(group), len(cells)))
        for e, eq in enumerate(group):
            for cell, coef in eq:
                t[e, where[cell]] += coef
        v = np.array([[values[c][i] for i, c in cells]])
        virtual = np.array([c.startswith(REST) for _, c in cells])
        h = np.array([[not c.startswith(REST) and bool(hidden[c][i]) for i, c in cells]])
        cost = np.array([[2 if total_row[i] else tier.get(c, 0) for i, c in cells]])
        _greedy(t, np.ones((1, len(group)), dtype=bool), v, virtual, h, cost)
        for (i, c), gone in zip(cells, h[0]):
            if not c.startswith(REST):
                hidden[c][i] = gone


def _greedy(t, present, v, virtual, h, cost) -> None:
    """Hide more shown cells (set `h`) of each row until `_assess` finds every protected value protected.

    t: sums (equations x columns, coefficients); present: which sums hold in each row; v: values (rows x
    columns); virtual: columns never shown; cost: each cell's tier (see `_tiers`)."""
    cost = np.where(v == 0, np.maximum(cost, 3), cost)  # a hidden 0 keeps its value for the reader: the last resort
    rows = np.arange(len(v))
    for _ in range(t.shape[1] + 1):
        # hiding more never narrows a range, so a row once protected stays so: look again only at the others
        fail, _ = _assess(t, present[rows], v[rows], virtual, h[rows])
        bad = fail.any(axis=1)
        rows, fail = rows[bad], fail[bad]
        if not len(rows):
            return
        picks = _pick(t, present, v, virtual, h, cost, rows, fail.argmax(axis=1))
        for r, pick in zip(rows, picks):
            h[r, list(pick)] = True
        rows = rows[[bool(pick) for pick in picks]]  # a row with nothing left to hide is as safe as it gets


def _codes(v, virtual, h) -> np.ndarray:
    small = (v >= LOW) & (v <= HIGH)
    hidden = np.where(small, _SMALL, np.where(v == 0, _ZERO, _LARGE))
    return np.where(virtual, _UNSHOWN, np.where(h, hidden, _SHOWN)).astype(np.int8)


def _assess(t, present, v, virtual, h) -> tuple[np.ndarray, np.ndarray]:
    """(fail, score), each rows x columns: which protected values are not protected yet, and how wide their
    ranges are (label-aware width, plus the label-free width / 100; for choosing between cells).

    The moves of a row are the circuits of its sums (`ranges.circuits` of t) that touch only cells the reader
    cannot see: the circuits of a subset of columns are the circuits of the whole whose columns lie in it, so
    they are listed once per set of sums, and every row, protected value and reader is walked at once."""
    code = _codes(v, virtual, h)
    small = (v >= LOW) & (v <= HIGH)
    target = (code == _SMALL) | ((code == _UNSHOWN) & small)
    fail = np.zeros(v.shape, dtype=bool)
    score = np.full(v.shape, np.inf)
    risk = np.flatnonzero(target.any(axis=1))
    if not len(risk):
        return fail, score
    if len(risk) > 1:  # rows alike in values, hidden cells and sums have the same answer: work each out once
        keys = np.concatenate([v[risk], code[risk], present[risk]], axis=1)
        _, first, back = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        if len(first) < len(risk):
            rows = risk[first]
            f, sc = _assess(t, present[rows], v[rows], virtual, h[rows])
            fail[risk], score[risk] = f[back.ravel()], sc[back.ravel()]
            return fail, score
    unknown = code[risk] != _SHOWN
    if SUM_RULE:  # a sum whose hidden cells all have one sign tells their total: it must not be 1-10
        known = np.abs((v[risk] * ~unknown) @ t.T)
        pos = unknown.astype(float) @ (t > 0).T.astype(float) > 0
        neg = unknown.astype(float) @ (t < 0).T.astype(float) > 0
        bad = present[risk] & (pos ^ neg) & (known >= LOW) & (known <= HIGH)
        fail[risk] |= (bad.astype(float) @ (t != 0).astype(float) > 0) & target[risk]
    lo_l, hi_l = _labelled_bounds(code, v)
    lo_f = np.where(code == _SHOWN, v, np.minimum(0.0, v))
    hi_f = np.where(code == _SHOWN, v, np.inf)
    sums, group = np.unique(present[risk], axis=0, return_inverse=True)
    for g, which in enumerate(sums):
        rows = risk[group.ravel() == g]
        found = ranges.circuits(t[which]) if which.any() else (np.zeros((0, v.shape[1])), True)
        if found is None or not found[1]:
            _assess_exactly(t[which], v, code, target, lo_l, hi_l, rows, fail, score)
            continue
        moves = found[0]
        outside = (moves != 0)[None, :, :] & ~(code[rows] != _SHOWN)[:, None, :]
        usable = ~outside.any(axis=2)  # rows x circuits
        r, j = np.nonzero(target[rows])
        r = rows[r]
        ui = np.searchsorted(rows, r)
        # a labelled 1-10 count cannot be wider than 9; any other value that reaches 10 with the labels
        # reaches it without them, since the label-free range is at least as wide
        need = np.where(code[r, j] == _SMALL, MIN_RANGE_LABELLED, MIN_RANGE)
        wl = _width(v[r], lo_l[r], hi_l[r], moves, usable[ui], j, need)
        short = wl < MIN_RANGE
        wf = wl.copy()
        wf[short] = _width(v[r[short]], lo_f[r[short]], hi_f[r[short]], moves, usable[ui[short]], j[short], MIN_RANGE)
        # where the labels alone narrow a value (a total of 1-10 whose parts are 1-10 too), ask only for the
        # width that hiding every count of its sums would leave
        enough = np.full(len(r), float(MIN_RANGE_LABELLED))
        narrow = wl < MIN_RANGE_LABELLED
        if narrow.any():
            xs = v[r[narrow]]
            lo_a, hi_a = _labelled_bounds(_codes(xs, virtual, np.ones(xs.shape, dtype=bool)), xs)
            every = np.ones((narrow.sum(), len(moves)), dtype=bool)
            enough[narrow] = _width(xs, lo_a, hi_a, moves, every, j[narrow], MIN_RANGE_LABELLED)
        fail[r, j] |= (wl < enough) | (wf < MIN_RANGE)
        score[r, j] = np.minimum(wl, MIN_RANGE) + np.minimum(wf, MIN_RANGE) / 100
    return fail, score


def _labelled_bounds(code, v) -> tuple[np.ndarray, np.ndarray]:
    """What the reader knows of each cell with the labels: shown as shown, 1-10, 11 and up (kept), 0, 0 and up."""
    lo = np.select([code == _SMALL, code == _LARGE, code == _SHOWN], [LOW, HIGH + 1, v], 0.0)
    hi = np.select([code == _SMALL, code == _ZERO, code == _SHOWN], [HIGH, 0.0, v], np.inf)
    return np.minimum(lo, v), hi  # an odd negative value stays possible


def _width(x, lo, hi, moves, usable, j, need) -> np.ndarray:
    up = ranges.walk(x, lo, hi, moves, usable, j, 1, need)
    return up + ranges.walk(x, lo, hi, moves, usable, j, -1, np.maximum(need - up, 0))


def _assess_exactly(t, v, code, target, lo_l, hi_l, rows, fail, score) -> None:
    """`_assess` for sums whose circuits are not all 0/1/-1, or too many to list: scipy's milp, row by row."""
    for i in rows:
        unknown = np.flatnonzero(code[i] != _SHOWN)
        shown = np.flatnonzero(code[i] == _SHOWN)
        a, b = t[:, unknown], -(t[:, shown] @ v[i, shown])
        for k, j in enumerate(unknown):
            if target[i, j]:
                wl = ranges.milp_width(a, b, lo_l[i, unknown], hi_l[i, unknown], k)
                wf = ranges.milp_width(a, b, np.minimum(0.0, v[i, unknown]), np.full(len(unknown), np.inf), k)
                enough = MIN_RANGE_LABELLED
                if wl < enough:  # as wide as hiding every count of its sums would leave it (see _assess)
                    every = _codes(v[i][None, :], code[i] == _UNSHOWN, np.ones((1, len(code[i])), dtype=bool))
                    lo_a, hi_a = _labelled_bounds(every, v[i][None, :])
                    enough = min(enough, ranges.milp_width(t, np.zeros(len(t)), lo_a[0], hi_a[0], j))
                fail[i, j] |= (wl < enough) | (wf < MIN_RANGE)
                score[i, j] = min(wl, MIN_RANGE) + min(wf, MIN_RANGE) / 100


def _pick(t, present, v, virtual, h, cost, rows, targets) -> list[tuple[int, ...]]:
    """For each row, the shown cell (or pair of cells) to hide next to protect its value in column `targets`."""
    shown = ~h & ~virtual[None, :]
    near, far = [], []
    for r, j in zip(rows, targets):
        mine = present[r] & (t[:, j] != 0)
        order = lambda cols: sorted(cols, key=lambda k: (cost[r, k], v[r, k], k))
        near.append(order(np.flatnonzero(shown[r] & (t[mine] != 0).any(axis=0))))
        far.append(order(np.flatnonzero(shown[r] & (t[present[r]] != 0).any(axis=0))))
    picks: list = [None] * len(rows)
    best = [(-np.inf, ()) for _ in rows]

    def trial(options: list[list[tuple[int, ...]]], chunk: int) -> None:
        """Try the options of every row still without a pick, `chunk` at a time in their order, all rows
        together; keep each row's first option that protects."""
        for start in range(0, max((len(o) for o in options), default=0), chunk):
            todo = [
                (i, k)
                for i in range(len(rows))
                if picks[i] is None
                for k in range(start, min(start + chunk, len(options[i])))
            ]
            if not todo:
                return
            sub = rows[[i for i, _ in todo]]
            trial_h = h[sub].copy()
            for m, (i, k) in enumerate(todo):
                trial_h[m, list(options[i][k])] = True
            fail, score = _assess(t, present[sub], v[sub], virtual, trial_h)
            for m, (i, k) in enumerate(todo):  # in option order within each row
                if picks[i] is not None:
                    continue
                if not fail[m, targets[i]]:
                    picks[i] = options[i][k]
                elif score[m, targets[i]] > best[i][0]:
                    best[i] = (score[m, targets[i]], options[i][k])

    def pairs_of(lists) -> list[list[tuple[int, int]]]:
        out = []
        for i, cols in enumerate(lists):
            r = rows[i]
            both = [(a, b) for n, a in enumerate(cols) for b in cols[n + 1 :]]
            both.sort(
                key=lambda p: (
                    max(cost[r, p[0]], cost[r, p[1]]),
                    cost[r, p[0]] + cost[r, p[1]],
                    v[r, p[0]] + v[r, p[1]],
                )
            )
            out.append(both[:MAX_PAIRS] if picks[i] is None else [])
        return out

    chunk = len(v[0]) if len(v) else 1
    if (cost[rows] >= HEADLINE).any():  # a pair of other cells before a headline count on its own
        cheap = [[k for k in cols if cost[r, k] < HEADLINE] for r, cols in zip(rows, near)]
        trial([[(k,) for k in cols] for cols in cheap], chunk)
        trial(pairs_of([[k for k in cols if cost[r, k] < HEADLINE] for r, cols in zip(rows, far)]), 10)
    trial([[(k,) for k in cols] for cols in near], chunk)
    trial(pairs_of(far), 10)
    for i in range(len(rows)):
        if picks[i] is None:  # nothing protects at once: widen the most, or hide the cheapest near cell
            picks[i] = best[i][1] if best[i][1] and best[i][0] > -np.inf else tuple(near[i][:1] or far[i][:1])
    return picks
