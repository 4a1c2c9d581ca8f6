"""Whole-number ranges of hidden cells: how far a reader who knows the shown cells and the sums can narrow them.

A table's sums, with the shown cells moved to the right-hand side, are a system `a @ x = b` over the cells the
reader cannot see (hidden counts and counts that are never shown). Knowing also that counts are whole numbers
within bounds (0 and up; 1 to 10 for a cell labelled "1–10"), the reader can narrow a cell to the values it
takes over the whole-number solutions; its range is their largest less their smallest.

`widths` measures that range from the true table, walking from the true values along the circuits of `a` (its
smallest linearly dependent sets of columns: each gives a move that keeps every sum). Every point reached is a
whole-number solution within the bounds, a value the reader cannot rule out, so the width found is never more
than the reader's. When every circuit is a vector of 0, 1 and -1 (as for totals and their parts, rates over
their denominators and tables with margins), the walk stops only at the true smallest and largest values: a
point from which no circuit improves is optimal for the linear program (any better point differs from it by a
sum of circuits that each move toward it), and its whole-number steps keep it whole, so it is optimal for the
whole-number program too. Other systems, and systems with too many column sets to enumerate, are solved
exactly with scipy's milp (HiGHS), whose answer is itself a whole-number solution.

Linear-programming bounds alone would not do: the LP relaxation's smallest and largest values are outer bounds
of the reader's (the LP may reach fractional points a whole-number reader rules out), so a wide LP range does
not prove a wide whole-number range. Points that are whole-number solutions do.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

MAX_SETS = 20_000  # column sets tried when listing circuits; beyond this, milp
MAX_STEPS = 200  # moves per walk; a walk cut short gives a smaller (still safe) width


def circuits(a: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """The circuits of `a` (m x k) as whole-number rows, each with both signs, and whether all are 0/1/-1.

    None when there are more than MAX_SETS column sets to try.
    """
    a = np.ascontiguousarray(a, dtype="float64")
    return _circuits(a.shape, a.tobytes())


@functools.lru_cache(maxsize=4096)
def _circuits(shape: tuple[int, int], data: bytes) -> tuple[np.ndarray, bool] | None:
    a = np.frombuffer(data, dtype="float64").reshape(shape)
    m, k = shape
    rank = int(np.linalg.matrix_rank(a)) if m else 0
    if sum(math.comb(k, s) for s in range(1, min(rank + 1, k) + 1)) > MAX_SETS:
        return None
    found = []
    for size in range(1, min(rank + 1, k) + 1):
        sets = np.array(list(itertools.combinations(range(k), size)), dtype=np.intp)
        sub = np.transpose(a[:, sets], (1, 0, 2)) if m else np.zeros((len(sets), 1, size))
        _, sv, vt = np.linalg.svd(sub, full_matrices=True)
        ranks = (sv > 1e-9).sum(axis=1)
        for i in np.flatnonzero(ranks == size - 1):
            v = vt[i, -1, :]
            if (np.abs(v) < 1e-9).any():
                continue  # a smaller dependent set lies inside: not a circuit
            v = _whole(v)
            if v is None:
                return None
            row = np.zeros(k)
            row[sets[i]] = v
            found += [row, -row]
    out = np.array(found).reshape(-1, k)
    return out, bool((np.abs(out) <= 1).all())


def _whole(v: np.ndarray) -> np.ndarray | None:
    """`v` scaled to the smallest whole numbers, or None if no small multiple is whole."""
    v = v / np.abs(v).min()
    for scale in range(1, 13):
        w = v * scale
        if np.allclose(w, np.round(w), atol=1e-7):
            return np.round(w)
    return None


@functools.lru_cache(maxsize=4096)
def _gather(shape: tuple[int, int], data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """For each circuit, where `walk` finds the room of each column it moves, and by how much it moves it."""
    moves = np.frombuffer(data, dtype="float64").reshape(shape)
    k = shape[1]
    width = int((moves != 0).sum(axis=1).max())
    index = np.full((len(moves), width), 2 * k)
    divide = np.ones((len(moves), width))
    for c, row in enumerate(moves):
        cols = np.flatnonzero(row)
        index[c, : len(cols)] = np.where(row[cols] > 0, cols, cols + k)
        divide[c, : len(cols)] = np.abs(row[cols])
    return index, divide


def walk(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, moves: np.ndarray, usable: np.ndarray, t: np.ndarray, sign: int, need
) -> np.ndarray:
    """How far column t[i] of each row i of `x` moves (up for sign 1, down for -1) by whole steps along the
    `moves` (circuits, one per row of `moves`) that usable[i] allows, while every column stays within
    [lo[i], hi[i]]; counted until it has moved need (one number or one per row). Returns inf where unbounded.

    x, lo, hi: rows x columns; moves: circuits x columns; usable: rows x circuits; t: rows."""
    n = len(x)
    moved = np.zeros(n)
    if not n or not len(moves):
        return moved
    need = np.broadcast_to(np.asarray(need, dtype="float64"), (n,))
    size = np.abs(moves)
    gain_at = (moves[:, t] * sign > 0).T * size[:, t].T  # rows x circuits: how far each moves column t
    gain_at = np.where(usable, gain_at, 0.0)
    x = np.array(x, dtype="float64")
    live = np.flatnonzero((gain_at > 0).any(axis=1) & (need > 0))
    # circuit c is limited by the room above (or below) each column it raises (or lowers): gather those
    # rooms, from [room above | room below | inf], through one index per entry of the circuit
    index, divide = _gather(moves.shape, np.ascontiguousarray(moves, dtype="float64").tobytes())
    for _ in range(MAX_STEPS):
        if not len(live):
            break
        xi = x[live]
        room = np.concatenate([hi[live] - xi, xi - lo[live], np.full((len(live), 1), np.inf)], axis=1)
        steps = np.floor(np.min(room[:, index] / divide, axis=2) + 1e-9)  # (rows, circuits)
        with np.errstate(invalid="ignore"):  # inf steps along circuits that do not move column t
            gain = np.where(gain_at[live] > 0, steps * gain_at[live], 0.0)
        best = gain.argmax(axis=1)
        pick = np.arange(len(live))
        top = gain[pick, best]
        endless = np.isinf(top)
        moved[live[endless]] = np.inf
        go = (top > 0) & ~endless
        x[live[go]] += steps[pick, best][go, None] * moves[best[go]]
        moved[live[go]] += top[go]
        live = live[go & (moved[live] < need[live])]
    return moved


def widths(
    a: np.ndarray, b: np.ndarray, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, t: int, need: float
) -> np.ndarray:
    """Width (largest less smallest) of column `t` over whole-number solutions of a @ y = b[i], lo <= y <= hi,
    for each row i, counted up to `need` (a result >= need means "at least need"; inf: unbounded).

    `x` holds a solution of each row (the true values), where every walk starts; lo and hi are per column.
    """
    found = circuits(a)
    n = len(x)
    if found is None or not found[1]:
        return np.array([milp_width(a, bi, lo, hi, t) for bi in b])
    moves = found[0]
    lo, hi = np.broadcast_to(lo, x.shape), np.broadcast_to(hi, x.shape)
    usable = np.ones((n, len(moves)), dtype=bool)
    at = np.full(n, t)
    up = walk(x, lo, hi, moves, usable, at, 1, need)
    with np.errstate(invalid="ignore"):  # inf - inf where the range is unbounded: nothing more to walk
        rest = np.nan_to_num(np.maximum(need - up, 0), nan=0.0)
    return up + walk(x, lo, hi, moves, usable, at, -1, rest)


def milp_width(a: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray, t: int) -> float:
    """Width of column `t` over whole-number solutions of a @ y = b, lo <= y <= hi, by scipy's milp (HiGHS)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    k = a.shape[1]
    cons = [LinearConstraint(a, b, b)] if len(a) else []
    ends = []
    for sign in (1.0, -1.0):
        c = np.zeros(k)
        c[t] = -sign  # milp minimises: -x_t for the largest value, x_t for the smallest
        res = milp(c, constraints=cons, integrality=np.ones(k), bounds=Bounds(lo, hi))
        if res.status == 3 or (res.status != 0 and _unbounded(a, b, lo, hi, c)):
            return np.inf  # a whole-number solution exists (the true table), so an unbounded relaxation is too
        if res.status != 0:  # not solved: claim no width, so that more is hidden
            return 0.0
        ends.append(-res.fun if sign > 0 else res.fun)
    return ends[0] - ends[1]


def _unbounded(a, b, lo, hi, c) -> bool:
    """Whether the linear relaxation of min c @ y, a @ y = b, lo <= y <= hi is unbounded (HiGHS's MIP solver
    may report an unbounded program only as not solved)."""
    from scipy.optimize import linprog

    res = linprog(
        c,
        A_eq=a if len(a) else None,
        b_eq=b if len(a) else None,
        bounds=list(zip(lo, [None if np.isinf(h) else h for h in hi])),
        method="highs",
    )
    return res.status == 3
