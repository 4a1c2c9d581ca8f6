"""outcomes.privacy.ranges: the circuit walk finds the same whole-number ranges as scipy's milp (HiGHS)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.privacy import ranges

INF = np.inf

# The row sums of discharge_outcomes over discharges, completed, left_against_advice, administrative,
# transferred, other, positive, ~discharges-positive, ~discharges-completed.
DISCHARGES = np.array(
    [
        [1, -1, -1, -1, -1, -1, 0, 0, 0],
        [0, -1, 0, 0, -1, 0, 1, 0, 0],
        [1, 0, 0, 0, 0, 0, -1, -1, 0],
        [1, -1, 0, 0, 0, 0, 0, 0, -1],
    ],
    dtype=float,
)


def test_circuits_of_a_total_and_two_parts():
    """t = a + b over (t, a, b): moves that keep the sum are the null space of [1, -1, -1], spanned by
    (1, 1, 0) and (1, 0, 1); its circuits (the moves on fewest cells) are (1, 1, 0), (1, 0, 1) and (0, 1, -1):
    raise the total with one part, or trade between the parts, each either way."""
    moves, whole = ranges.circuits(np.array([[1.0, -1.0, -1.0]]))
    assert whole
    found = {tuple(m) for m in moves.astype(int)}
    assert found == {(1, 1, 0), (-1, -1, 0), (1, 0, 1), (-1, 0, -1), (0, 1, -1), (0, -1, 1)}


def test_a_part_labelled_small_beside_one_of_11_or_more():
    """A shown total of 15 over parts 3 ("1–10": 1..10) and 12 ("hidden", kept at 11 and up): 3 can be 1..4."""
    a = np.array([[1.0, 1.0]])
    x = np.array([[3.0, 12.0]])
    lo, hi = np.array([1.0, 11.0]), np.array([10.0, INF])
    assert ranges.widths(a, x.sum(axis=1, keepdims=True), x, lo, hi, 0, 10).tolist() == [3.0]
    assert ranges.milp_width(a, np.array([15.0]), lo, hi, 0) == 3.0
    assert ranges.widths(a, None, x, np.zeros(2), np.full(2, INF), 0, INF).tolist() == [15.0]  # 0..15


def test_a_walk_reports_an_unbounded_range():
    """A hidden total and a hidden part: both can grow without limit."""
    a = np.array([[1.0, -1.0]])  # t - a = shown parts
    assert ranges.widths(a, None, np.array([[20.0, 5.0]]), np.zeros(2), np.full(2, INF), 1, 10)[0] == INF


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.lists(st.integers(0, 25), min_size=5, max_size=5),
    st.lists(st.booleans(), min_size=9, max_size=9),
    st.lists(st.sampled_from(["free", "labelled"]), min_size=9, max_size=9),
)
def test_the_walk_agrees_with_milp_on_the_discharge_sums(parts, hidden, bounds):
    """Random discharge rows, any cells hidden, any column bounded as a label would bound it: the width the
    walk finds is the width milp finds (the sums are unimodular), for every unknown cell."""
    c, laa, adm, tr, oth = parts
    d = c + laa + adm + tr + oth
    p = c + tr
    row = np.array([d, c, laa, adm, tr, oth, p, d - p, d - c], dtype=float)
    unknown = np.array(hidden)
    unknown[7:] = True  # the rests are never shown
    if not unknown.any():
        return
    cols = np.flatnonzero(unknown)
    shown = np.flatnonzero(~unknown)
    a = DISCHARGES[:, cols]
    keep = (a != 0).any(axis=1)
    a = a[keep]
    b = -(DISCHARGES[keep][:, shown] @ row[shown])
    x = row[cols][None, :]
    lo = np.zeros(len(cols))
    hi = np.full(len(cols), INF)
    for k, j in enumerate(cols):
        if bounds[j] == "labelled":  # as the reader of a label knows it
            if 1 <= row[j] <= 10:
                lo[k], hi[k] = 1, 10
            elif row[j] >= 11:
                lo[k] = 11
            else:
                hi[k] = 0
    for k in range(len(cols)):
        walked = ranges.widths(a, b[None, :], x, lo, hi, k, INF)[0]
        exact = ranges.milp_width(a, b, lo, hi, k)
        assert walked == exact, (row.tolist(), cols.tolist(), k)
