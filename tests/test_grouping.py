"""outcomes/measures/grouping.py against pandas' groupby on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from outcomes.measures import grouping


def test_numbers_and_sums_are_those_of_a_sorted_groupby():
    rng = np.random.default_rng(3)
    n = 500
    rows = pd.DataFrame(
        {
            "site": rng.choice(["b", "a", None], n),
            "level": pd.Categorical(rng.choice(["x", "w", "y"], n)),
            "count": rng.integers(0, 4, n),
            "weight": rng.integers(1, 9, n),
        }
    )
    keys = ["site", "level", "count"]
    number = grouping.numbered([rows[k] for k in keys])
    expected = rows.groupby(keys, sort=True, dropna=False, observed=True).ngroup().to_numpy()
    assert (number == expected).all()
    totals = rows.groupby(keys, sort=True, dropna=False, observed=True)["weight"].sum().to_numpy()
    assert (grouping.sums(number, rows["weight"]) == totals).all()
    first = grouping.firsts(number)
    assert all(first[k] == np.flatnonzero(number == k)[0] for k in range(number.max() + 1))


def test_many_columns_of_many_values_do_not_overflow_the_key():
    rng = np.random.default_rng(4)
    columns = [rng.integers(0, 5000, 2000) for _ in range(8)]  # 5000^8 is past 2^63
    frame = pd.DataFrame({f"c{k}": c for k, c in enumerate(columns)})
    expected = frame.groupby(list(frame.columns), sort=True).ngroup().to_numpy()
    assert (grouping.numbered(columns) == expected).all()


def test_no_rows():
    number = grouping.numbered([np.array([], dtype=int)])
    assert len(number) == 0 and len(grouping.firsts(number)) == 0 and len(grouping.sums(number, [])) == 0
