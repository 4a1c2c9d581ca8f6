"""Intervals and limits for comparing a count with what was expected: Byar's interval for observed/expected and
Spiegelhalter's exact binomial funnel limits (docs/measures/site_comparison.md)."""

from __future__ import annotations

import numpy as np
from scipy import stats

Z95 = 1.959963984540054


def byar(observed, expected, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Byar's approximation to the exact Poisson interval for observed/expected (Breslow & Day 1987, p. 69).

    low = O (1 - 1/(9 O) - z / (3 sqrt O))^3 / E (0 when O = 0); high = (O + 1)(1 - 1/(9 (O + 1)) + z /
    (3 sqrt(O + 1)))^3 / E. NaN where E is missing or not positive.
    """
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(o > 0, o * (1 - 1 / (9 * o) - z / (3 * np.sqrt(o))) ** 3, 0.0)
        high = (o + 1) * (1 - 1 / (9 * (o + 1)) + z / (3 * np.sqrt(o + 1))) ** 3
        ok = np.isfinite(e) & (e > 0)
        return np.where(ok, low / e, np.nan), np.where(ok, high / e, np.nan)


def funnel_limits(target: float, n, coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Spiegelhalter's (2005, appendix A.1.1) exact binomial funnel limits around `target` at sizes `n`.

    For p = (1 - coverage) / 2 and 1 - p: r_p is the smallest r with P(R <= r) >= p for R ~ Binomial(n, target),
    alpha = (P(R <= r_p) - p) / (P(R <= r_p) - P(R <= r_p - 1)), and the limit is (r_p - alpha) / n, clipped to
    [0, 1]. NaN where n is not positive; both limits equal the target when it is 0 or 1.
    """
    size = np.asarray(n, dtype=float)
    out = []
    for p in ((1 - coverage) / 2, (1 + coverage) / 2):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = stats.binom.ppf(p, size, target)
            hi, lo = stats.binom.cdf(r, size, target), stats.binom.cdf(r - 1, size, target)
            limit = np.clip((r - (hi - p) / (hi - lo)) / size, 0.0, 1.0)
        if target in (0.0, 1.0):
            limit = np.full_like(size, target)
        out.append(np.where(size > 0, limit, np.nan))
    return out[0], out[1]
