"""Python post-steps a catalog query names in its header (`model: NAME`).

A model query's SQL returns rows of units (episodes, or counted groups of them); the runner hands those rows to
the named post-step, which returns the published table (one row per site). The SQL's rows never leave the runner.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from outcomes.privacy import suppress as sup

# name -> "module:function"; imported on first use, so reading the catalog loads no statistics library
REGISTRY = {"casemix": "outcomes.measures.casemix:post_step"}


@dataclass
class Detail:
    """A table beside the result. With a `site` column it is narrowed to the sites shown, and its numbers are
    hidden on the rows of a site whose `follows` cell is hidden in the suppressed result."""

    frame: pd.DataFrame
    follows: str | None = None


@dataclass
class Total:
    """The all-site row behind a table that shows an all-site rate.

    `counts`: the all-site value of count columns; `rate`: a rate column whose rule, applied to the all-site row,
    decides whether the all-site rate may be shown; `carried_by`: the columns that give the all-site rate away
    (the rate itself, and values computed from it), hidden on every row when it may not be shown.
    """

    counts: dict
    rate: str
    carried_by: list[str]


@dataclass
class Output:
    """What a post-step returns: the table for every site, notes for the reader, and tables beside it (a
    mapping: an outcomes.kept.Later makes a costly one only when it is read)."""

    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    details: Mapping[str, Detail] = field(default_factory=dict)
    total: Total | None = None


def get(name: str):
    """The post-step function registered as `name`: f(rows: DataFrame, params: dict) -> Output."""
    module, func = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), func)


ALL_SITES = "\x00all sites"  # the all-site row's site: a value no site can have (NUL is refused at load)


def suppress_table(table: pd.DataFrame, spec: dict, total: Total | None, every_site: bool):
    """(suppressed table, mask) of a post-step's table, protected against its all-site row too.

    When the viewer sees `every_site`, the all-site counts can be worked out (from the all-site rate and the
    eligible counts, or from sums the model keeps), so the all-site row joins the table as a total row for
    complementary suppression. Either way, when the all-site row's `rate` would be hidden (its counts are small,
    or hidden to protect a site's), its `carried_by` columns are hidden on every row.
    """
    if total is None:
        return sup.suppress(table, spec)
    row = {c: np.nan for c in table.columns} | total.counts | {"site": ALL_SITES}
    num, den = spec["rates"][total.rate]
    row[total.rate] = row[num] / row[den] if row[den] else np.nan
    extra = pd.DataFrame([row]).astype({c: table[c].dtype for c in total.counts})
    if every_site:
        both = pd.concat([table, extra], ignore_index=True)
        out, mask = sup.suppress(both, spec | {"total_rows": {"site": ALL_SITES}})
        rate_hidden = bool(mask[total.rate].iloc[-1])
        out, mask = out.iloc[:-1].copy(), mask.iloc[:-1].copy()
    else:  # the all-site counts hold sites this viewer cannot see: only the all-site rate's own rule applies
        out, mask = sup.suppress(table, spec)
        rate_hidden = bool(sup.suppress(extra, spec)[1][total.rate].iloc[0])
    if rate_hidden:
        for col in total.carried_by:
            mask[col] = True
            numeric = pd.api.types.is_numeric_dtype(out[col])
            out[col] = pd.Series(np.nan, index=out.index, dtype="float64" if numeric else object)
    return out, mask
