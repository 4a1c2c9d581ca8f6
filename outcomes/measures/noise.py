"""Whether a tile's change from the period before is larger than chance alone would give."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z = 3.0  # standard errors: the same 3-sigma rule as the p-charts' limits, so a tile and its chart agree


@dataclass(frozen=True)
class Verdict:
    beyond: bool | None  # True: more than chance explains; False: within it; None: not tested
    reason: str


def two_proportions(p1: float | None, n1: float | None, p0: float | None, n0: float | None, z: float = Z) -> Verdict:
    """Compare a rate `p1` of `n1` with `p0` of `n0` (two-proportion z-test with the pooled rate): beyond chance
    when the difference is more than `z` standard errors."""
    if None in (p1, n1, p0, n0) or any(isinstance(v, float) and math.isnan(v) for v in (p1, n1, p0, n0)):
        return Verdict(None, "not tested: a value or its n is hidden or missing")
    if n1 <= 0 or n0 <= 0:
        return Verdict(None, "not tested: no one counted in one of the periods")
    pooled = (p1 * n1 + p0 * n0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    diff = p1 - p0
    if se == 0:
        beyond = diff != 0
        return Verdict(beyond, "every client had the same outcome in both periods" if not beyond else "")
    score = abs(diff) / se
    if score > z:
        return Verdict(True, f"larger than chance would give: {score:.1f} standard errors (n {n1:,.0f} and {n0:,.0f})")
    return Verdict(
        False,
        f"within what chance gives for n {n1:,.0f} and {n0:,.0f} ({score:.1f} standard errors; "
        f"coloured only beyond {z:.0f})",
    )
