"""Rows numbered by their distinct values, and sums by number, in numpy: what pandas' groupby(sort=True) gives,
without its cost per call (a case-mix fit groups tens of thousands of rows several times)."""

from __future__ import annotations

import numpy as np
import pandas as pd

_ROOM = np.iinfo(np.int64).max


def numbered(columns: list) -> np.ndarray:
    """Each row's number among the distinct rows of `columns` (equal-length columns, any values pandas can sort),
    0, 1, ... in the sorted order of the rows, the first column varying slowest; a missing value sorts last."""
    key = np.zeros(len(columns[0]) if columns else 0, dtype=np.int64)
    for column in columns:
        codes, values = pd.factorize(column, sort=True, use_na_sentinel=False)
        size = max(len(values), 1)
        if len(key) and int(key.max()) >= _ROOM // size:  # renumber before the key would overflow
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
        key = key * size + codes
    return np.unique(key, return_inverse=True)[1].reshape(-1)


def firsts(number: np.ndarray) -> np.ndarray:
    """The position of the first row of each number, in number order."""
    return np.unique(number, return_index=True)[1]


def sums(number: np.ndarray, weights) -> np.ndarray:
    """The sum of `weights` (whole numbers) over the rows of each number, in number order."""
    total = np.bincount(
        number, weights=np.asarray(weights, dtype=np.float64), minlength=int(number.max(initial=-1)) + 1
    )
    return np.rint(total).astype(np.int64)
