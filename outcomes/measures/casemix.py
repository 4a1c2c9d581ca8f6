"""Case-mix adjusted site comparison: expected counts from a logistic model of the outcome on client factors,
O/E ratios with Byar's interval, indirectly standardised rates and Spiegelhalter's funnel limits.

The method is written down in docs/measures/site_comparison.md. Every function works on rows with a `site`, a
0/1 `outcome`, the FACTORS columns and, optionally, `episodes`: how many episodes the row stands for (1 when
absent). queries/site_comparison.sql returns one counted row per site, outcome and combination of levels.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from outcomes.kept import Later
from outcomes.measures import grouping
from outcomes.measures.funnel import byar, funnel_limits
from outcomes.measures.models import Detail, Output, Total
from outcomes.privacy.suppress import HIGH, LOW

FACTORS = {
    "age_band": "Age band",
    "gender": "Gender",
    "primary_substance": "Primary substance",
    "co_occurring_mh": "Co-occurring mental health",
    "living_situation": "Living situation",
    "employment": "Employment",
    "payer": "Payer",
    "prior_episodes": "Prior episodes (365 days)",
}
MIN_LEVEL = 30  # a level with fewer episodes is counted with its factor's reference level
MISSING = "missing"
COLUMNS = [
    "site",
    "eligible",
    "observed",
    "expected",
    "oe_ratio",
    "oe_low",
    "oe_high",
    "raw_rate",
    "adjusted_rate",
    "overall_rate",
    "limit95_low",
    "limit95_high",
    "limit998_low",
    "limit998_high",
    "flag",
]
MAX_ITER = 100
# A level whose log odds ratio or standard error grows past these is (quasi-)separated: its odds ratio is
# infinite and the fit has no finite answer, although IRLS stops and reports convergence.
MAX_COEF, MAX_SE = 15.0, 100.0
_FIT_LOCK = threading.Lock()


@dataclass
class Fit:
    """A fitted case-mix model. `probability` holds each pattern's predicted probability (NaN when not converged)."""

    converged: bool
    message: str
    levels: pd.DataFrame  # factor, level, episodes, model_level, role (reference, estimated, merged, aliased)
    patterns: pd.DataFrame  # one row per distinct combination of model levels: FACTORS, n, events, probability
    params: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    conf_int: pd.DataFrame = field(default_factory=pd.DataFrame)
    iterations: int = 0
    design: tuple | None = None  # (matrix, names) of every estimated level, on `patterns`' rows: refits reuse it


def prepare(rows: pd.DataFrame, factors=tuple(FACTORS)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows with each factor as its levels, merged, categorical in sorted order; the levels table).

    A missing value is the level "missing". The reference level is the most common (ties: first by name); a
    level with fewer than MIN_LEVEL episodes is counted as the reference level.
    """
    out = rows[["site", "outcome"]].copy()
    out["outcome"] = pd.to_numeric(out["outcome"]).astype("int64")
    weight = rows["episodes"].astype("int64") if "episodes" in rows else pd.Series(1, index=rows.index, dtype="int64")
    out["episodes"] = weight
    tables = []
    for f in factors:
        codes, names = pd.factorize(_levels(rows[f]), sort=True)
        counts = pd.Series(np.bincount(codes, weights=weight, minlength=len(names)).astype("int64"), index=names)
        counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
        reference = counts.index[0] if len(counts) else MISSING
        merged = [lvl for lvl, n in counts.items() if n < MIN_LEVEL and lvl != reference]
        model_levels = pd.Index([reference if lvl in merged else lvl for lvl in names])
        kept = model_levels.unique().sort_values()
        # categorical: grouping and matching on codes, not text (a third of a fit's time at a million clients)
        out[f] = pd.Categorical.from_codes(kept.get_indexer(model_levels)[codes], kept)
        tables.append(
            pd.DataFrame(
                {
                    "factor": f,
                    "level": counts.index,
                    "episodes": counts.to_numpy(dtype="int64"),
                    "model_level": [reference if lvl in merged else lvl for lvl in counts.index],
                    "role": [
                        "reference" if lvl == reference else "merged" if lvl in merged else "estimated"
                        for lvl in counts.index
                    ],
                }
            )
        )
    levels = (
        pd.concat(tables, ignore_index=True)
        if tables
        else pd.DataFrame(columns=["factor", "level", "episodes", "model_level", "role"])
    )
    return out, levels


def _levels(column: pd.Series) -> pd.Series:
    """A factor's values as text, a missing value as MISSING."""
    if isinstance(column.dtype, pd.StringDtype):  # as the query returns them: no value by value conversion
        return column.fillna(MISSING)
    return column.astype(object).where(column.notna(), MISSING).map(str)


def _design(patterns: pd.DataFrame, levels: pd.DataFrame, factors) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Intercept and one indicator per estimated level of `factors`, with names (factor, level)."""
    estimated = levels.loc[levels["role"] == "estimated", ["factor", "level"]]
    names = [("", "intercept")] + [(f, lvl) for f in factors for g, lvl in estimated.itertuples(index=False) if g == f]
    x = np.zeros((len(patterns), len(names)))
    x[:, 0] = 1.0
    codes = {f: pd.factorize(patterns[f]) for f in factors}  # compared as codes: text comparisons cost more
    for k, (f, lvl) in enumerate(names[1:], start=1):
        at, values = codes[f]
        if lvl in values:
            x[:, k] = at == values.get_loc(lvl)
    return x, names


def _independent(x: np.ndarray) -> np.ndarray:
    """Which columns of `x` are not linear combinations of the columns before them.

    From the QR decomposition of x'x (square, however few the rows): x c = 0 exactly when x'x c = 0, and a zero
    on R's diagonal marks a column in the span of those before it.
    """
    gram = x.T @ x
    diag = np.abs(np.diag(np.linalg.qr(gram, mode="r")))
    return diag > max(float(diag.max()), 1.0) * 1e-9


def collapse(coded: pd.DataFrame) -> pd.DataFrame:
    """`prepare`d rows as cells: one row per site and pattern of model levels, with episodes (n), events and the
    pattern's number (0, 1, ... in the order of the levels)."""
    pattern = grouping.numbered([coded[f] for f in FACTORS])
    cell = grouping.numbered([coded["site"], pattern])
    first = grouping.firsts(cell)
    cells = coded.iloc[first][["site", *FACTORS]].reset_index(drop=True)
    cells["n"] = grouping.sums(cell, coded["episodes"])
    cells["events"] = grouping.sums(cell, coded["outcome"] * coded["episodes"])
    cells["pattern"] = pattern[first]
    return cells


def fit(rows: pd.DataFrame, factors=tuple(FACTORS)) -> Fit:
    """Logistic regression (statsmodels GLM Binomial) of `outcome` on `factors`, over every row."""
    coded, levels = prepare(rows)
    return fit_cells(collapse(coded), levels, factors)


def fit_cells(cells: pd.DataFrame, levels: pd.DataFrame, factors=tuple(FACTORS)) -> Fit:
    """`fit` on `collapse`d rows.

    The fit runs on the distinct patterns of model levels with their counts of episodes and events (binomial
    rows): the likelihood is that of the episodes, and the fit costs what the number of patterns costs.
    """
    number = cells["pattern"].to_numpy()
    patterns = _summed(cells, number, grouping.firsts(number)).rename_axis("pattern")
    return fit_patterns(patterns, levels, factors, _design(patterns, levels, FACTORS))


def _summed(rows: pd.DataFrame, number: np.ndarray, first: np.ndarray) -> pd.DataFrame:
    """One row per number (`first`: each number's first row): the FACTORS of its rows, and their n and events
    added up."""
    out = rows.iloc[first][list(FACTORS)].reset_index(drop=True)
    out["n"] = grouping.sums(number, rows["n"])
    out["events"] = grouping.sums(number, rows["events"])
    return out


def fit_patterns(
    patterns: pd.DataFrame, levels: pd.DataFrame, factors, design: tuple, start: pd.Series | None = None
) -> Fit:
    """The model of `factors` on binomial `patterns` (FACTORS, n, events), whose `design` rows may hold levels of
    other factors too; `start`: a fit's estimates, where the iterations begin (0 for a level it did not have)."""
    import statsmodels.api as sm

    factors = list(factors)
    patterns = patterns.assign(probability=np.nan)

    def failed(message: str) -> Fit:
        return Fit(False, message, levels, patterns, design=design)

    n, events = int(patterns["n"].sum()), int(patterns["events"].sum())
    if n == 0:
        return failed("No eligible episodes: nothing to fit.")
    if events in (0, n):
        return failed("Every eligible episode had the same outcome, so the model cannot be fitted; raw rates only.")
    use = [k for k, (f, _) in enumerate(design[1]) if f == "" or f in factors]
    x, names = design[0][:, use], [design[1][k] for k in use]
    keep = _independent(x)
    aliased = [nm for nm, k in zip(names, keep) if not k]
    if aliased:
        marks = set(aliased)
        levels = levels.copy()
        levels.loc[[(f, lvl) in marks for f, lvl in zip(levels["factor"], levels["level"])], "role"] = "aliased"
        x, names = x[:, keep], [nm for nm, k in zip(names, keep) if k]
    if len(names) == 1:  # intercept only: the fit is the overall rate, in closed form
        patterns["probability"] = events / n
        params = pd.Series([np.log(events / (n - events))], index=pd.MultiIndex.from_tuples(names))
        return Fit(
            True,
            "Converged (intercept only: no factor level outside the references had "
            f"{MIN_LEVEL} or more episodes, so expected = eligible x overall rate).",
            levels,
            patterns,
            params,
            pd.DataFrame(np.nan, index=params.index, columns=[0, 1]),
            0,
            design,
        )
    endog = np.column_stack([patterns["events"], patterns["n"] - patterns["events"]]).astype(float)
    # Convergence is read from the result, never from warnings: the warnings filters are one process-wide
    # state, so a warning caught around one fit may be another thread's. The lock keeps the silencing of
    # statsmodels' warnings from being undone by a fit on another thread (a page fits several at once).
    if start is None:  # the intercept-only fit: the overall log odds
        begin = np.zeros(len(names))
        begin[0] = np.log(events / (n - events))
    else:
        begin = np.array([start.get(nm, 0.0) for nm in names], dtype=float)
    with _FIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res, converged = _newton_or_irls(sm.GLM(endog, x, family=sm.families.Binomial()), begin, start is not None)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return failed(f"The model fit failed ({exc}); raw rates only.")
    index = pd.MultiIndex.from_tuples(names)
    params, se = pd.Series(res.params, index=index), pd.Series(res.bse, index=index)
    iterations = int(res.fit_history.get("iteration", 0))
    if not converged:
        return failed(f"The model did not converge in {MAX_ITER} iterations; raw rates only.")
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(se))):
        return failed("The model did not converge (non-finite estimates); raw rates only.")
    # statsmodels' PerfectSeparationWarning means "fitted = observed", which on binomial rows is also what any
    # saturated fit gives; separation shows instead as fitted probabilities of 0 or 1 and unbounded estimates
    fitted = special.expit(x @ params.to_numpy())
    if fitted.min() < 1e-9 or fitted.max() > 1 - 1e-9:
        return failed(
            "The model did not converge: perfect separation (some combination of factor levels "
            "predicts the outcome exactly); raw rates only."
        )
    bad = [nm for nm in names[1:] if abs(params[nm]) > MAX_COEF or se[nm] > MAX_SE]
    if bad:
        which = ", ".join(f"{FACTORS[f].lower()} {lvl}" for f, lvl in bad)
        return failed(
            f"The model did not converge: quasi-complete separation at {which} (its odds ratio has no "
            "finite estimate); raw rates only."
        )
    patterns["probability"] = fitted
    ci = pd.DataFrame(np.asarray(res.conf_int(0.05)), index=index)
    return Fit(True, f"Converged in {iterations} iterations.", levels, patterns, params, ci, iterations, design)


def _newton_or_irls(model, begin: np.ndarray, warm: bool) -> tuple:
    """(statsmodels result, converged): Newton's method from `begin`; IRLS, statsmodels' default (from `begin`
    if `warm`), where Newton fails or does not converge (separation, say), so such a fit is judged as IRLS leaves it.

    Both find the same maximum (estimates within 1e-14 at a million clients); a Newton step costs a product
    x'Wx where an IRLS step solves a least-squares problem on every row: 19 against 53 ms at 21,000 patterns.
    """
    try:
        res = model.fit(method="newton", start_params=begin, max_start_irls=0, maxiter=MAX_ITER, disp=False)
        if res.mle_retvals["converged"] and np.all(np.isfinite(res.params)) and np.all(np.isfinite(res.bse)):
            return res, True
    except np.linalg.LinAlgError:
        pass
    res = model.fit(maxiter=MAX_ITER, start_params=begin if warm else None)
    return res, bool(res.converged)


def expected_by_site(cells: pd.DataFrame, model: Fit) -> pd.Series:
    """Sum of each site's predicted probabilities, by site."""
    prob = model.patterns["probability"].to_numpy()[cells["pattern"].to_numpy()]
    return (cells["n"] * prob).groupby(cells["site"], sort=True).sum(min_count=1)


def site_table(cells: pd.DataFrame, model: Fit) -> pd.DataFrame:
    """One row per site, ordered by site, with the COLUMNS of the site_comparison contract."""
    by_site = cells.groupby("site", sort=True)[["n", "events"]].sum()
    table = by_site.reset_index().rename(columns={"n": "eligible", "events": "observed"})
    table["eligible"] = table["eligible"].astype("int64")
    table["observed"] = table["observed"].astype("int64")
    total_n, total_o = int(table["eligible"].sum()), int(table["observed"].sum())
    overall = total_o / total_n if total_n else np.nan
    if model.converged:
        table["expected"] = expected_by_site(cells, model).reindex(table["site"]).to_numpy(dtype=float)
    else:
        table["expected"] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        table["oe_ratio"] = table["observed"] / table["expected"]
    table["oe_low"], table["oe_high"] = byar(table["observed"], table["expected"])
    table["raw_rate"] = table["observed"] / table["eligible"]
    table["adjusted_rate"] = table["oe_ratio"] * overall
    table["overall_rate"] = overall
    for name, coverage in (("95", 0.95), ("998", 0.998)):
        low, high = funnel_limits(overall, table["eligible"], coverage) if total_n else (np.nan, np.nan)
        table[f"limit{name}_low"], table[f"limit{name}_high"] = low, high
    adj = table["adjusted_rate"]
    flag = np.where(adj < table["limit998_low"], "below", np.where(adj > table["limit998_high"], "above", "within"))
    table["flag"] = pd.Series(flag, index=table.index, dtype=object).where(adj.notna(), None)
    return table[COLUMNS]


def odds_ratios(model: Fit) -> pd.DataFrame:
    """One row per factor level: its odds ratio against the reference level with a 95% interval, or why not.

    An estimated level where 1-10 episodes had the outcome, or 1-10 had not, is left blank: its interval's width
    would tell that count roughly."""
    rows = []
    pats = model.patterns
    at_level = {}  # (factor, level) -> (events, episodes): plain dicts, as a lookup per level is what this does
    for f in model.levels["factor"].unique():
        sums = pats.groupby(f, observed=True)[["events", "n"]].sum()
        at_level |= {(f, lvl): (int(e), int(n)) for lvl, e, n in zip(sums.index, sums["events"], sums["n"])}
    params = dict(zip(model.params.index, model.params.to_numpy()))
    bounds = dict(zip(model.conf_int.index, model.conf_int.to_numpy()))
    for lv in model.levels.itertuples(index=False):
        key = (lv.factor, lv.level)
        odds = low = high = np.nan
        if lv.role == "reference":
            note, odds = "reference (most common level)", 1.0
        elif lv.role == "merged":
            note = f"fewer than {MIN_LEVEL} episodes: counted with {lv.model_level}"
        elif lv.role == "aliased":
            note = "not separately estimable: determined by other factors' levels"
        elif model.converged and key in params:
            events, n = at_level[key]
            if LOW <= events <= HIGH or LOW <= n - events <= HIGH:
                note = "not shown: a small count of episodes at this level had the outcome, or had not"
            else:
                note = "estimated"
                odds = float(np.exp(params[key]))
                low, high = (float(np.exp(v)) for v in bounds[key])
        else:
            note = "not estimated: the model did not converge"
        rows.append(
            {"factor": FACTORS[lv.factor], "level": lv.level, "odds_ratio": odds, "or_low": low, "or_high": high}
            | {"note": note}
        )
    return pd.DataFrame(rows, columns=["factor", "level", "odds_ratio", "or_low", "or_high", "note"])


def factor_effects(cells: pd.DataFrame, model: Fit) -> pd.DataFrame:
    """How much adjusting for each factor moved each site's expected count: the model refitted without it.

    One row per site and factor: expected (full model), expected_without (refitted without the factor) and
    change = expected - expected_without. A factor with no estimated level changes nothing (0).
    """
    cols = ["site", "factor", "expected", "expected_without", "change"]
    if not model.converged:
        return pd.DataFrame(columns=cols)
    full = expected_by_site(cells, model)
    # a level aliased in the full model may be estimable once a factor is left out
    base = model.levels.replace({"role": {"aliased": "estimated"}})
    out = []
    for f, label in FACTORS.items():
        estimated = ((model.levels["factor"] == f) & (model.levels["role"] == "estimated")).any()
        if estimated:
            reduced = _without(model, base, f)
            without = expected_by_site(cells, reduced) if reduced.converged else pd.Series(np.nan, index=full.index)
        else:
            without = full
        out.append(
            pd.DataFrame(
                {
                    "site": full.index,
                    "factor": label,
                    "expected": full.to_numpy(),
                    "expected_without": without.reindex(full.index).to_numpy(dtype=float),
                }
            )
        )
    table = pd.concat(out, ignore_index=True)
    table["change"] = table["expected"] - table["expected_without"]
    return table[cols]


def _without(model: Fit, levels: pd.DataFrame, factor: str) -> Fit:
    """The model refitted without `factor`, its probabilities on `model`'s patterns.

    Patterns that differ only in `factor` are one pattern to the refit, their episodes and events added up: the
    same likelihood on fewer rows (a third to a half as many at a million clients).
    """
    others = [g for g in FACTORS if g != factor]
    pats = model.patterns
    group = grouping.numbered([pats[g] for g in others])
    first = grouping.firsts(group)
    merged = _summed(pats, group, first)
    matrix, names = model.design
    reduced = fit_patterns(merged, levels, others, (matrix[first], names), model.params)
    spread = reduced.patterns["probability"].to_numpy()[group]
    return Fit(reduced.converged, reduced.message, reduced.levels, pats.assign(probability=spread), reduced.params)


def model_summary(model: Fit) -> pd.DataFrame:
    """One row: whether the fit converged, what to tell the reader about it, and its iterations."""
    return pd.DataFrame({"converged": [model.converged], "message": [model.message], "iterations": [model.iterations]})


def post_step(rows: pd.DataFrame, params: dict | None = None) -> Output:
    """The `model: casemix` step of queries/site_comparison.sql: counted rows of all sites -> site table."""
    if rows.empty:
        empty = pd.DataFrame({c: pd.Series(dtype=object if c in ("site", "flag") else float) for c in COLUMNS})
        empty[["eligible", "observed"]] = empty[["eligible", "observed"]].astype("int64")
        return Output(empty, ["No eligible episodes in this range."])
    from threadpoolctl import threadpool_limits

    # The model's matrices are small (patterns x levels): BLAS threads only contend for the cores. On two busy
    # cores one SVD of such a matrix took 0.3 s with OpenBLAS's threads and 1 ms with one.
    with threadpool_limits(limits=1):
        coded, levels = prepare(rows)
        cells = collapse(coded)
        model = fit_cells(cells, levels)
        table = site_table(cells, model)
    kept = cells[["site", "pattern", "n"]]

    def effects() -> Detail:  # eight refits, more than the fit costs: made when a page opens the table
        with threadpool_limits(limits=1):
            return Detail(factor_effects(kept, model), follows="expected")

    notes = [
        f"Case-mix model (logistic regression on {', '.join(v.lower() for v in FACTORS.values())}): " + model.message
    ]
    details = Later(
        {"model": Detail(model_summary(model)), "odds_ratios": Detail(odds_ratios(model)), "factor_effects": effects}
    )
    # the all-site rate is shown on every row, and limits and adjusted rates are computed from it
    total = Total(
        {"eligible": int(table["eligible"].sum()), "observed": int(table["observed"].sum())},
        "raw_rate",
        ["overall_rate", "adjusted_rate", "limit95_low", "limit95_high", "limit998_low", "limit998_high", "flag"],
    )
    return Output(table, notes, details, total)
