"""Small cells stay hidden: an attacker who knows the published table and its declared sums cannot pin any
hidden cell to one value; exports equal the screen; formulas are neutralised; small populations show nothing.

The attacker is written independently of outcomes.privacy.suppress: it reads the published (suppressed) table and the
query's `suppress:` declaration and solves integer programs (scipy.optimize.milp) for the smallest and largest
value each hidden cell can take. Every hidden count, and every unshown count that is 1-10 (the rest of a rate's
denominator, an unshown part of a total), must keep at least two possible values.

The range attacker (`RangeAttack`, `range_leaks`) also reads each hidden cell's published reason: "small" is
1 to 10, "complement" is 0 or 11 and up. For every protected value (a hidden or unshown count of 1 to 10) its
range without the labels must be 10 or more, with the labels 10 or more values must stay possible (as many as
the labels alone leave, where they leave fewer), and no declared sum's hidden cells may add up to a known 1-10.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from apptest_tools import open_tables
from hypothesis import given, settings
from hypothesis import strategies as st

from outcomes.present import files as output
from outcomes.present import labels
from outcomes.privacy import suppress as sup

ROOT = Path(__file__).resolve().parents[1]
BIG = 100_000  # the attacker's upper bound for a count it cannot see


# --- the attacker ----------------------------------------------------------------------------------------


class Attack:
    """Integer unknowns for one published table; `solve(expr)` gives the feasible (min, max) of a linear expr."""

    def __init__(self, shown: pd.DataFrame, spec: dict):
        self.shown = shown.reset_index(drop=True)
        self.spec = spec
        self.var: dict = {}  # name -> index
        self.rows: list[tuple[dict, float]] = []  # (coefficients by name, right-hand side): sum c*x = rhs
        counts = [c for c in spec.get("counts", []) if c in self.shown]
        for i in range(len(self.shown)):
            for c in counts:
                if pd.isna(self.shown.at[i, c]):
                    self._var((i, c))

    def _var(self, name):
        return self.var.setdefault(name, len(self.var))

    def cell(self, i: int, col: str) -> tuple[dict, float]:
        """A count cell as (coefficients, constant): a variable if hidden, else its shown value."""
        v = self.shown.at[i, col]
        return ({(i, col): 1.0}, 0.0) if pd.isna(v) else ({}, float(v))

    def equal(self, terms: list[tuple[float, tuple[dict, float]]]) -> None:
        """sum(sign * term) == 0, each term from `cell` or a fresh variable."""
        coefs: dict = {}
        const = 0.0
        for sign, (c, k) in terms:
            for name, a in c.items():
                self._var(name)
                coefs[name] = coefs.get(name, 0.0) + sign * a
            const += sign * k
        if coefs:
            self.rows.append((coefs, -const))
        else:
            assert abs(const) < 1e-6, "the published table contradicts its own declared sums"

    def learn(self, total_rows: bool = True) -> Attack:
        """Everything the declaration and the shown cells tell: sums, total rows, rates and their rests."""
        spec, df = self.spec, self.shown
        for i in range(len(df)):
            for total, parts in (spec.get("totals") or {}).items():
                terms = [(1.0, self.cell(i, total))]
                for p in parts:
                    terms.append((-1.0, ({(i, p): 1.0}, 0.0) if p.startswith("~") else self.cell(i, p)))
                self.equal(terms)
            for rate, (num, den) in (spec.get("rates") or {}).items():
                self.equal(
                    [(1.0, self.cell(i, den)), (-1.0, self.cell(i, num)), (-1.0, ({(i, f"~{den}-{num}"): 1.0}, 0.0))]
                )
                r = df.at[i, rate]
                n, d = self.cell(i, num), self.cell(i, den)
                if pd.isna(r):
                    continue
                if not rate.startswith("ci_"):  # a shown share: num = r * den
                    self.equal([(1.0, n), (-float(r), d)])
                elif n[0] and not d[0]:  # a shown Wilson bound and denominator: try every numerator
                    fits = [x for x in range(int(d[1]) + 1) if abs(wilson(x, d[1], rate) - r) < 1e-9]
                    if len(fits) == 1:
                        self.equal([(1.0, n), (-1.0, ({}, float(fits[0])))])
        for key, marker in (spec.get("total_rows") or {}).items() if total_rows else []:
            measures = set(spec.get("counts", [])) | set(spec.get("rates") or {}) | set(spec.get("stats") or {})
            others = [c for c in df.columns if c != key and c not in measures]
            for _, idx in df.groupby(others, dropna=False).groups.items() if others else [(None, df.index)]:
                tot = [i for i in idx if df.at[i, key] == marker]
                parts = [i for i in idx if df.at[i, key] != marker]
                for c in spec.get("counts", []):
                    self.equal([(1.0, self.cell(tot[0], c))] + [(-1.0, self.cell(p, c)) for p in parts])
        return self

    def solve(self, expr: dict) -> tuple[float, float]:
        from scipy.optimize import Bounds, LinearConstraint, milp

        n = len(self.var)
        a = np.zeros((len(self.rows), n))
        b = np.zeros(len(self.rows))
        for r, (coefs, rhs) in enumerate(self.rows):
            for name, c in coefs.items():
                a[r, self.var[name]] += c
            b[r] = rhs
        cons = [LinearConstraint(a, b, b)] if len(self.rows) else []
        c = np.zeros(n)
        for name, k in expr.items():
            c[self.var[name]] = k
        out = []
        for sign in (1, -1):
            res = milp(sign * c, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, BIG))
            assert res.success, f"attacker's program is infeasible: {res.message}"
            out.append(sign * res.fun)
        return out[0], out[1]

    def pinned(self, truth: pd.DataFrame) -> list[tuple]:
        """(cell, value) for every protected unknown that the attacker can solve exactly."""
        found = []
        for name in list(self.var):
            i, col = name
            if col.startswith("~"):
                value = self._unshown(truth, i, col)
                if not 1 <= value <= 10:
                    continue  # a large rest is no secret
            else:
                value = float(truth.at[i, col])
            lo, hi = self.solve({name: 1.0})
            assert lo - 1e-6 <= value <= hi + 1e-6, f"attacker's model excludes the truth at {name}"
            if hi - lo < 0.5:
                found.append((name, value))
        return found

    def _unshown(self, truth, i, col):
        for total, parts in (self.spec.get("totals") or {}).items():
            if col in parts:
                return truth.at[i, total] - sum(truth.at[i, p] for p in parts if p != col)
        den, num = col[1:].split("-", 1)
        return truth.at[i, den] - truth.at[i, num]


def wilson(x, n, which: str = "ci_low") -> float:
    """Wilson score 95% bound, as the database's wilson_low / wilson_high macros compute it."""
    if n <= 0:
        return float("nan")
    z, p = 1.959963984540054, x / n
    mid, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((mid - half if which == "ci_low" else mid + half) / (1 + z * z / n))


def attack(truth: pd.DataFrame, spec: dict, total_rows: bool = True) -> list[tuple]:
    shown, _ = sup.suppress(truth, spec)
    return Attack(shown, spec).learn(total_rows).pinned(truth.reset_index(drop=True))


def primary_only(truth: pd.DataFrame, spec: dict, monkeypatch) -> list[tuple]:
    with monkeypatch.context() as m:
        m.setattr(sup, "complement", lambda df, mask, spec: mask)
        return attack(truth, spec)


# --- tables ------------------------------------------------------------------------------------------------

DISCHARGE_SPEC = {
    "counts": ["discharges", "completed", "left_against_advice", "administrative", "transferred", "other", "positive"],
    "rates": {"positive_rate": ["positive", "discharges"], "completion_rate": ["completed", "discharges"]},
    "totals": {
        "discharges": ["completed", "left_against_advice", "administrative", "transferred", "other"],
        "positive": ["completed", "transferred"],
    },
}
PARTS = DISCHARGE_SPEC["totals"]["discharges"]


def discharge_table(rng: np.random.Generator, rows: int = 6) -> pd.DataFrame:
    """Discharges by reason, many of them small, with the totals and rates of discharge_outcomes."""
    parts = {p: rng.choice([0, 1, 2, 3, 5, 8, 10, 11, 12, 15, 20, 40], size=rows) for p in PARTS}
    df = pd.DataFrame({"month": [f"2025-{m:02d}" for m in range(1, rows + 1)], "level_of_care": "residential", **parts})
    df.insert(2, "discharges", df[PARTS].sum(axis=1))
    df["positive"] = df.completed + df.transferred
    df = df[df.discharges > 0].reset_index(drop=True)
    df["positive_rate"] = df.positive / df.discharges
    df["completion_rate"] = df.completed / df.discharges
    return df


def test_a_hidden_reason_is_recovered_without_complementary_suppression(monkeypatch):
    """One small part and its total shown: the attacker subtracts. This is what the rest of the file guards."""
    truth = pd.DataFrame(
        {
            "month": ["2025-03"],
            "level_of_care": ["iop"],
            "discharges": [60],
            "completed": [25],
            "left_against_advice": [20],
            "administrative": [12],
            "transferred": [0],
            "other": [3],
        }
    )
    truth["positive"] = truth.completed + truth.transferred
    truth["positive_rate"] = truth.positive / truth.discharges
    truth["completion_rate"] = truth.completed / truth.discharges
    assert ((0, "other"), 3.0) in primary_only(truth, DISCHARGE_SPEC, monkeypatch)
    assert attack(truth, DISCHARGE_SPEC) == []
    shown, mask = sup.suppress(truth, DISCHARGE_SPEC)
    assert mask.loc[0, "other"] and mask.iloc[0][PARTS].sum() >= 2, "a second part must be hidden with it"
    assert shown.loc[0, "transferred"] == 0 or mask.loc[0, "transferred"]


def test_two_relations_together_do_not_give_a_cell_away(monkeypatch):
    """completed is small; hiding only another part of discharges leaves completed = positive - transferred."""
    truth = pd.DataFrame(
        {
            "month": ["2025-02"],
            "level_of_care": ["residential"],
            "discharges": [60],
            "completed": [5],
            "left_against_advice": [30],
            "administrative": [12],
            "transferred": [13],
            "other": [0],
        }
    )
    truth["positive"] = truth.completed + truth.transferred
    truth["positive_rate"] = truth.positive / truth.discharges
    truth["completion_rate"] = truth.completed / truth.discharges
    assert primary_only(truth, DISCHARGE_SPEC, monkeypatch)
    assert attack(truth, DISCHARGE_SPEC) == []
    _, mask = sup.suppress(truth, DISCHARGE_SPEC)
    assert mask.loc[0, "completion_rate"], "a rate follows its hidden count"


@pytest.mark.parametrize("seed", range(25))
def test_random_discharge_tables_leak_nothing(seed):
    truth = discharge_table(np.random.default_rng(seed))
    assert attack(truth, DISCHARGE_SPEC) == []


RATE_SPEC = {
    "counts": ["eligible_discharges", "stepped_down"],
    "rates": {
        "stepdown_rate": ["stepped_down", "eligible_discharges"],
        "ci_low": ["stepped_down", "eligible_discharges"],
        "ci_high": ["stepped_down", "eligible_discharges"],
    },
}


def rate_table(pairs) -> pd.DataFrame:
    df = pd.DataFrame(pairs, columns=["eligible_discharges", "stepped_down"])
    df.insert(0, "month", [f"2025-{m:02d}" for m in range(1, len(df) + 1)])
    df["stepdown_rate"] = df.stepped_down / df.eligible_discharges
    df["ci_low"] = [wilson(x, n, "ci_low") for x, n in zip(df.stepped_down, df.eligible_discharges)]
    df["ci_high"] = [wilson(x, n, "ci_high") for x, n in zip(df.stepped_down, df.eligible_discharges)]
    return df


def test_rates_follow_their_counts(monkeypatch):
    """eligible 40 shown, stepped 5 hidden: a shown rate would give 0.125 * 40 = 5 back."""
    truth = rate_table([(40, 5)])
    with monkeypatch.context() as m:  # a rate left shown beside its hidden numerator is an exact leak
        m.setattr(sup, "complement", lambda df, mask, spec: mask.assign(stepdown_rate=False))
        assert ((0, "stepped_down"), 5.0) in attack(truth, RATE_SPEC)
    shown, mask = sup.suppress(truth, RATE_SPEC)
    assert mask.loc[0, ["stepped_down", "stepdown_rate", "ci_low", "ci_high"]].all()
    assert shown.loc[0, "eligible_discharges"] == 40
    assert attack(truth, RATE_SPEC) == []


def test_a_small_rest_hides_the_numerator(monkeypatch):
    """eligible 25, stepped 20: the 5 who did not step down are a small cell too; showing both counts gives them."""
    truth = rate_table([(25, 20), (300, 150), (18, 0), (12, 12), (11, 1), (0, 0)])
    assert ((0, "~eligible_discharges-stepped_down"), 5.0) in primary_only(truth, RATE_SPEC, monkeypatch)
    assert attack(truth, RATE_SPEC) == []
    shown, mask = sup.suppress(truth, RATE_SPEC)
    assert shown.loc[0, "eligible_discharges"] == 25 and mask.loc[0, "stepped_down"]
    assert not mask.loc[1].any(), "a row with nothing small is left alone"


@pytest.mark.parametrize("seed", range(10))
def test_random_rate_tables_leak_nothing(seed):
    rng = np.random.default_rng(100 + seed)
    den = rng.integers(0, 60, size=8)
    num = (den * rng.random(8)).astype(int)
    assert attack(rate_table(list(zip(den, num))), RATE_SPEC) == []


TOTAL_ROW_SPEC = {
    "counts": ["referred", "admitted"],
    "rates": {"admitted_rate": ["admitted", "referred"]},
    "total_rows": {"site": "All sites"},
}


def total_row_table(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["site", "referred", "admitted"])
    total = pd.DataFrame([["All sites", df.referred.sum(), df.admitted.sum()]], columns=df.columns)
    df = pd.concat([df, total], ignore_index=True)
    df["admitted_rate"] = df.admitted / df.referred
    return df


def test_a_total_row_does_not_give_a_site_away(monkeypatch):
    truth = total_row_table([("Northside", 40, 30), ("Southside", 7, 5), ("Eastside", 50, 44)])
    pinned = primary_only(truth, TOTAL_ROW_SPEC, monkeypatch)
    assert ((1, "referred"), 7.0) in pinned and ((1, "admitted"), 5.0) in pinned
    assert attack(truth, TOTAL_ROW_SPEC) == []
    assert attack(truth, TOTAL_ROW_SPEC, total_rows=True) == []


def test_a_total_row_must_be_declared_to_be_protected(monkeypatch):
    """Sanity of the attacker: with the relation undeclared, suppression cannot know, and the attack succeeds."""
    truth = total_row_table([("Northside", 40, 30), ("Southside", 7, 5), ("Eastside", 50, 44)])
    spec = {k: v for k, v in TOTAL_ROW_SPEC.items() if k != "total_rows"}
    shown, _ = sup.suppress(truth, spec)
    pinned = Attack(shown, TOTAL_ROW_SPEC).learn().pinned(truth)
    assert ((1, "referred"), 7.0) in pinned


@pytest.mark.parametrize("seed", range(10))
def test_random_total_row_tables_leak_nothing(seed):
    rng = np.random.default_rng(200 + seed)
    rows = []
    for k in range(int(rng.integers(2, 6))):
        referred = int(rng.choice([0, 3, 8, 12, 20, 35, 60]))
        rows.append((f"site {k}", referred, int(referred * rng.random())))
    assert attack(total_row_table(rows), TOTAL_ROW_SPEC) == []


MARGINS_SPEC = {
    "counts": ["residential", "iop", "op", "total"],
    "totals": {"total": ["residential", "iop", "op"]},
    "total_rows": {"payer": "All payers"},
}


def margins_table(grid, payers) -> pd.DataFrame:
    """Admissions by payer (rows) and level of care (columns), with a row margin and a column margin."""
    df = pd.DataFrame(grid, columns=["residential", "iop", "op"])
    df.insert(0, "payer", payers)
    df = pd.concat(
        [df, pd.DataFrame([["All payers", *df[["residential", "iop", "op"]].sum()]], columns=df.columns)],
        ignore_index=True,
    )
    df["total"] = df[["residential", "iop", "op"]].sum(axis=1)
    return df


def test_a_two_way_table_with_margins(monkeypatch):
    truth = margins_table([[20, 30, 25], [15, 4, 40], [33, 21, 18]], ["medicaid", "commercial", "self_pay"])
    assert ((1, "iop"), 4.0) in primary_only(truth, MARGINS_SPEC, monkeypatch)
    assert attack(truth, MARGINS_SPEC) == []
    _, mask = sup.suppress(truth, MARGINS_SPEC)
    assert mask.values.sum() >= 4, "a lone cell in a two-way table needs a rectangle of four"


@pytest.mark.parametrize("seed", range(10))
def test_random_two_way_tables_leak_nothing(seed):
    rng = np.random.default_rng(300 + seed)
    payers = [f"payer {k}" for k in range(int(rng.integers(2, 5)))]
    grid = rng.choice([0, 2, 5, 9, 11, 14, 25, 60], size=(len(payers), 3))
    assert attack(margins_table(grid, payers), MARGINS_SPEC) == []


def test_unshown_part_of_a_total():
    """scheduled = attended + no_show + client_cancelled, where client_cancelled (3) is not a column."""
    spec = {
        "counts": ["scheduled", "attended", "no_show"],
        "rates": {"attendance_rate": ["attended", "scheduled"], "no_show_rate": ["no_show", "scheduled"]},
        "totals": {"scheduled": ["attended", "no_show", "~client_cancelled"]},
    }
    truth = pd.DataFrame(
        {"week_start": ["2025-03-03", "2025-03-10"], "scheduled": [80, 90], "attended": [60, 60], "no_show": [17, 30]}
    )
    truth["attendance_rate"] = truth.attended / truth.scheduled
    truth["no_show_rate"] = truth.no_show / truth.scheduled
    assert attack(truth, spec) == []
    _, mask = sup.suppress(truth, spec)
    assert mask.loc[0, ["attended", "no_show"]].any() and not mask.loc[1].any()


def test_complement_is_idempotent_and_only_widens():
    truth = discharge_table(np.random.default_rng(7), rows=12)
    shown, mask = sup.suppress(truth, DISCHARGE_SPEC)
    primary = truth[PARTS + ["discharges", "positive"]].apply(lambda s: s.between(1, 10))
    assert (mask[primary.columns] | ~primary).all().all(), "every primary cell stays hidden"
    again = sup.complement(truth, mask, DISCHARGE_SPEC)
    assert again.equals(mask)


# --- catalog queries on the demo database ----------------------------------------------------------------


def test_catalog_declarations_cover_the_sums_in_discharge_outcomes(catalog):
    spec = catalog["discharge_outcomes"].suppress
    assert set(spec["totals"]["discharges"]) == set(PARTS)
    assert spec["totals"]["positive"] == ["completed", "transferred"]


def test_catalog_queries_leak_nothing_on_demo_data(demo_db, catalog):
    """Every catalog query with declared sums or rates, attacked on its published demo-data output."""
    from outcomes.catalog import runner

    attacked = 0
    for name, query in sorted(catalog.items()):
        spec = query.suppress
        if not (spec.get("totals") or spec.get("rates") or spec.get("total_rows")):
            continue
        if query.model:  # a model's columns are not their counts' ratios; tests/test_casemix.py attacks it
            continue
        raw = runner.run(demo_db, query, raw=True).data
        shown = runner.run(demo_db, query).data
        counts = [c for c in spec.get("counts", []) if c in raw]
        keep = raw[counts].notna().all(axis=1)  # rows with an empty count carry no sums
        raw, shown = raw[keep].reset_index(drop=True), shown[keep].reset_index(drop=True)
        # attack row by row (no catalog query declares total rows): each row is its own system
        for i in range(min(len(raw), 60)):
            one = Attack(shown.iloc[[i]], spec).learn()
            if one.var:
                assert one.pinned(raw.iloc[[i]].reset_index(drop=True)) == [], f"{name} row {i}"
                attacked += 1
    assert attacked > 20


def test_catalog_rejects_bad_relations(tmp_path):
    from outcomes.catalog.query import CatalogError, parse

    base = (
        "-- title: t\n-- description: d\n-- suppress:\n--   counts: [a, b, c]\n{extra}select 1 as a, 1 as b, 2 as c\n"
    )
    good = tmp_path / "good.sql"
    good.write_text(base.format(extra="--   totals: {c: [a, b]}\n--   total_rows: {site: All}\n"))
    assert parse(good).suppress["totals"] == {"c": ["a", "b"]}
    for extra in (
        "--   totals: {c: [a, zz]}\n",
        "--   totals: {zz: [a, b]}\n",
        "--   totals: {c: a}\n",
        "--   totals: {c: [a, ~x, ~y]}\n",
        "--   totals: {c: [c, a]}\n",
        "--   total_rows: {a: All}\n",
        "--   total_rows: [site]\n",
        "--   sums: {c: [a, b]}\n",
    ):
        bad = tmp_path / "bad.sql"
        bad.write_text(base.format(extra=extra))
        with pytest.raises(CatalogError, match="bad.sql"):
            parse(bad)


# --- the range attacker: how far can a hidden small value be narrowed? ------------------------------------


class RangeAttack(Attack):
    """The Attack's integer program, read with the published labels: a hidden count whose reason is "small" is
    1 to 10; one whose reason is "complement" is 0 or 11 and up (a binary per cell). Still independent of
    outcomes.suppress: it reads only the published table, its reasons and the declaration."""

    def __init__(self, shown: pd.DataFrame, spec: dict, why: pd.DataFrame):
        super().__init__(shown, spec)
        self.why = why.reset_index(drop=True)

    def solve(self, expr: dict, labelled: bool = False, fix: tuple | None = None) -> tuple[float, float]:
        """(smallest, largest) of the linear `expr` over the whole-number solutions, read with the labels or
        not; with `fix` = (cell, value), that cell is held at the value (None when nothing fits then)."""
        from scipy.optimize import Bounds, LinearConstraint, milp

        names = list(self.var)
        n = len(names)
        gaps = [
            k
            for k, (i, c) in enumerate(names)
            if labelled and not c.startswith("~") and self.why.at[i, c] == sup.COMPLEMENT
        ]
        size = n + len(gaps)
        lo, hi = np.zeros(size), np.full(size, float(BIG))
        hi[n:] = 1
        for k, (i, c) in enumerate(names):
            if labelled and not c.startswith("~") and self.why.at[i, c] == sup.SMALL:
                lo[k], hi[k] = 1, 10
        if fix is not None:
            k = self.var[fix[0]]
            lo[k] = hi[k] = fix[1]
        rows, lower, upper = [], [], []
        for coefs, rhs in self.rows:
            a = np.zeros(size)
            for name, c in coefs.items():
                a[self.var[name]] += c
            rows.append(a)
            lower.append(rhs)
            upper.append(rhs)
        for z, k in enumerate(gaps):  # x = 0, or 11 <= x <= BIG: x - BIG z <= 0 and x - 11 z >= 0
            a = np.zeros(size)
            a[k], a[n + z] = 1, -BIG
            rows.append(a), lower.append(-np.inf), upper.append(0)
            a = np.zeros(size)
            a[k], a[n + z] = 1, -11
            rows.append(a), lower.append(0), upper.append(np.inf)
        cons = [LinearConstraint(np.array(rows), lower, upper)] if rows else []
        c = np.zeros(size)
        for name, k in expr.items():
            c[self.var[name]] = k
        out = []
        for sign in (1, -1):
            res = milp(sign * c, constraints=cons, integrality=np.ones(size), bounds=Bounds(lo, hi))
            if fix is not None and res.status == 2:
                return None
            assert res.success, f"attacker's program is infeasible: {res.message}"
            out.append(sign * res.fun)
        return out[0], out[1]

    def possible(self, name, labelled: bool, enough: int = 10, scan: int = 60) -> int:
        """How many whole values `name` can take (counted up to `enough`): a label "hidden" (0 or 11 and up)
        can leave gaps inside the range, so each value from the smallest up is tried."""
        lo, hi = self.solve({name: 1.0}, labelled)
        found = 0
        for value in range(int(round(lo)), int(round(min(hi, lo + scan))) + 1):
            if value in (lo, hi) or self.solve({name: 1.0}, labelled, (name, value)) is not None:
                found += 1
                if found >= enough:
                    break
        return found

    def protected(self, truth: pd.DataFrame) -> list[tuple]:
        """(cell, value) for every unknown that is a count of 1 to 10: a hidden one, or one never shown."""
        out = []
        for name in self.var:
            i, col = name
            value = self._unshown(truth, i, col) if col.startswith("~") else float(truth.at[i, col])
            if 1 <= value <= 10:
                out.append((name, value))
        return out

    def known_sums(self) -> list[float]:
        """The known total of every declared sum whose unknown cells all have one sign."""
        return [
            abs(rhs)
            for coefs, rhs in self.rows
            if coefs and (all(c > 0 for c in coefs.values()) or all(c < 0 for c in coefs.values()))
        ]


def range_leaks(
    truth: pd.DataFrame,
    spec: dict,
    shown: pd.DataFrame | None = None,
    why: pd.DataFrame | None = None,
    total_rows: bool = True,
) -> list[tuple]:
    """Every protected value the attacker narrows too far: (cell, value, what, found). Without labels its
    range (largest less smallest whole-number value) must be 10 or more (11 or more possible values); with
    them, 10 or more values must stay possible (every one of 1-10 for a cell labelled "1–10") or, where the
    labels alone leave fewer (every count hidden), as many; and no declared sum's hidden cells may add up to
    a known 1-10."""
    truth = truth.reset_index(drop=True)
    if shown is None:
        shown, _, why = sup.suppress_detail(truth, spec)
    attacker = RangeAttack(shown, spec, why).learn(total_rows)
    leaks = [(None, s, "hidden cells of a sum add up to", s) for s in attacker.known_sums() if 1 <= s <= 10]
    blind = None
    for name, value in attacker.protected(truth):
        lo, hi = attacker.solve({name: 1.0})
        assert lo - 1e-6 <= value <= hi + 1e-6, f"the attacker's model excludes the truth at {name}"
        if hi - lo < 10 - 1e-6:
            leaks.append((name, value, "range without labels", hi - lo))
        lo, hi = attacker.solve({name: 1.0}, labelled=True)
        assert lo - 1e-6 <= value <= hi + 1e-6, f"the labelled model excludes the truth at {name}"
        values = attacker.possible(name, labelled=True)
        if values < 10:
            if blind is None:  # what the labels alone tell: every count hidden, each with its true label
                counts = [c for c in spec.get("counts", []) if c in truth]
                hide_all = shown.copy()
                hide_all[counts] = np.nan
                for col in [*(spec.get("rates") or {}), *(spec.get("stats") or {})]:
                    hide_all[col] = np.nan
                labels = why.copy()
                for c in counts:
                    labels[c] = np.where(truth[c].between(1, 10), sup.SMALL, sup.COMPLEMENT)
                blind = RangeAttack(hide_all, spec, labels).learn(total_rows)
            if values < blind.possible(name, labelled=True):
                leaks.append((name, value, "possible values with labels", values))
    return leaks


def test_reasons_and_labels_follow_each_column_type():
    """Hand-made: rate rows (eligible, stepped) = (40, 5), (25, 20), (12, 12), (300, 150); a stat over n.
    Row 0: stepped 5 is small, so are its rate and CIs (from a small count). Row 1: 20 of 25 leaves 5 who did
    not step down: stepped 20 is hidden to protect them (complement), and so is the rate: calling it small
    would tell that the rest is 1-10. Row 2: nothing small (rest 0). Row 3 untouched."""
    truth = rate_table([(40, 5), (25, 20), (12, 12), (300, 150)])
    shown, mask, why = sup.suppress_detail(truth, RATE_SPEC)
    assert why["stepped_down"].tolist() == ["small", "complement", "", ""]
    assert why["stepdown_rate"].tolist() == ["small", "complement", "", ""]
    assert why["ci_low"].tolist() == ["small", "complement", "", ""] and (why["eligible_discharges"] == "").all()
    assert ((why != "").to_numpy() == mask.to_numpy()).all()
    screen = sup.for_screen(shown, mask, RATE_SPEC, why)
    assert screen["stepped_down"].tolist()[:2] == ["1–10", "hidden"]
    assert screen["stepdown_rate"].tolist()[:2] == ["too few", "hidden"]
    assert sup.hidden_column(why).tolist() == [
        "stepped_down=small;stepdown_rate=small;ci_low=small;ci_high=small",
        "stepped_down=complement;stepdown_rate=complement;ci_low=complement;ci_high=complement",
        "",
        "",
    ]
    assert sup.legend(why, RATE_SPEC) == " · ".join([sup.SMALL_NOTE, sup.FEW_NOTE, sup.COMPLEMENT_NOTE])
    assert sup.legend(why.iloc[2:], RATE_SPEC) == ""
    # without reasons, a table with sums cannot tell small from complement: everything hidden reads "hidden"
    assert set(sup.for_screen(shown, mask, RATE_SPEC)["stepped_down"][:2]) == {"hidden"}
    stats = {"counts": ["episodes"], "stats": {"median_days": "episodes"}}
    los = pd.DataFrame({"level": ["iop", "op"], "episodes": [7, 40], "median_days": [55.0, 90.0]})
    out, mask, why = sup.suppress_detail(los, stats)
    assert why["median_days"].tolist() == ["small", ""]  # a stat whose n is 1-10, 55 days or not
    assert sup.for_screen(out, mask, stats)["median_days"].tolist() == ["too few", 90.0]  # no sums: small


def test_suppressed_exports_name_the_hidden_cells():
    truth = rate_table([(40, 5), (300, 150)])
    shown, _, why = sup.suppress_detail(truth, RATE_SPEC)
    back = pd.read_csv(io.StringIO(output.to_csv(shown, why)), keep_default_na=False)
    assert list(back.columns)[-1] == "hidden" and back["stepped_down"].tolist() == ["", "150"]
    assert back["hidden"].tolist() == ["stepped_down=small;stepdown_rate=small;ci_low=small;ci_high=small", ""]
    assert '"hidden":""' in output.to_json(shown, why).replace(" ", "")
    assert "hidden" not in output.to_csv(shown).splitlines()[0]


def test_the_range_attacker_narrows_what_the_old_rule_let_through(monkeypatch):
    """Parts 3 and 12 of a shown total 15, the 3 labelled "1–10" and the 12 "hidden" (so 0 or 11 and up): the
    3 can only be 1 to 4. The old rule (no hidden cell pinned to one value) let this through; the range rule
    hides a larger part instead (left_against_advice 30: 3 can then be 1 to 10)."""
    truth = pd.DataFrame(
        {
            "month": ["2025-03"],
            "level_of_care": ["iop"],
            "discharges": [75],
            "completed": [30],
            "left_against_advice": [30],
            "administrative": [12],
            "transferred": [0],
            "other": [3],
        }
    )
    truth["positive"] = truth.completed + truth.transferred
    truth["positive_rate"] = truth.positive / truth.discharges
    truth["completion_rate"] = truth.completed / truth.discharges
    shown, mask, why = sup.suppress_detail(truth, DISCHARGE_SPEC)
    assert range_leaks(truth, DISCHARGE_SPEC) == []
    assert mask.loc[0, ["other", "left_against_advice"]].all() and not mask.loc[0, "administrative"]
    assert not mask.loc[0, ["discharges", "completed", "completion_rate"]].any(), "the headline stays"
    assert why.loc[0, "other"] == sup.SMALL and why.loc[0, "left_against_advice"] == sup.COMPLEMENT
    hidden_12 = shown.assign(administrative=np.nan, left_against_advice=30)
    labels = why.assign(administrative=sup.COMPLEMENT, left_against_advice="")
    found = range_leaks(truth, DISCHARGE_SPEC, hidden_12, labels)
    assert ((0, "other"), 3.0, "possible values with labels", 4) in found  # other is 1, 2, 3 or 4


def test_two_small_parts_summing_to_20_are_both_10_to_a_reader_of_labels():
    """Without labels, a + b = 20 leaves each 0 to 20; labelled "1–10" both, each is 10. Hide a third."""
    truth = pd.DataFrame(
        {
            "month": ["2025-03"],
            "discharges": [60],
            "completed": [25],
            "left_against_advice": [15],
            "administrative": [10],
            "transferred": [0],
            "other": [10],
            "positive": [25],
        }
    )
    truth["positive_rate"] = truth.positive / truth.discharges
    truth["completion_rate"] = truth.completed / truth.discharges
    shown, mask, why = sup.suppress_detail(truth, DISCHARGE_SPEC)
    assert range_leaks(truth, DISCHARGE_SPEC) == []
    assert mask.loc[0, "left_against_advice"], "the smallest part that protects: 15"
    only_two = shown.assign(left_against_advice=15.0)
    labels = why.assign(left_against_advice="")
    assert ((0, "other"), 10.0, "possible values with labels", 1) in range_leaks(
        truth, DISCHARGE_SPEC, only_two, labels
    )


def _switch_off_the_range_rule(monkeypatch):
    """The rule as it was: a hidden value only needs two possible values, and sums may be known."""
    from outcomes.privacy import complement

    monkeypatch.setattr(complement, "MIN_RANGE", 1)
    monkeypatch.setattr(complement, "MIN_RANGE_LABELLED", 1)
    monkeypatch.setattr(complement, "SUM_RULE", False)


@pytest.mark.parametrize(
    "make,spec",
    [
        (lambda rng: discharge_table(rng), DISCHARGE_SPEC),
        # denominators of 11-24 with a small rest: hiding the numerator (11 and up) leaves the rest narrow
        (
            lambda rng: rate_table([(int(d), int(d - rng.integers(1, 11))) for d in rng.integers(11, 25, size=8)]),
            RATE_SPEC,
        ),
    ],
)
def test_the_range_attacker_succeeds_with_the_range_rule_switched_off(make, spec, monkeypatch):
    tables = [make(np.random.default_rng(400 + seed)) for seed in range(6)]
    assert all(range_leaks(t, spec) == [] for t in tables)
    _switch_off_the_range_rule(monkeypatch)
    assert sum(len(range_leaks(t, spec)) for t in tables) >= 3


small_counts = st.integers(0, 14) | st.sampled_from([0, 0, 11, 12, 15, 20, 25, 40, 60])


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.tuples(*[small_counts] * 5), min_size=1, max_size=4))
def test_random_counts_by_group_with_totals_keep_their_range(parts):
    df = pd.DataFrame(parts, columns=PARTS)
    df.insert(0, "month", [f"2025-{m:02d}" for m in range(1, len(df) + 1)])
    df.insert(1, "discharges", df[PARTS].sum(axis=1))
    df["positive"] = df.completed + df.transferred
    df = df[df.discharges > 0].reset_index(drop=True)
    df["positive_rate"] = df.positive / df.discharges
    df["completion_rate"] = df.completed / df.discharges
    assert range_leaks(df, DISCHARGE_SPEC) == []


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.floats(0, 1)), min_size=1, max_size=8))
def test_random_rates_with_denominators_keep_their_range(pairs):
    df = rate_table([(d, int(d * share)) for d, share in pairs])
    assert range_leaks(df, RATE_SPEC) == []


@settings(max_examples=30, deadline=None, database=None)
@given(st.lists(st.tuples(small_counts, st.floats(0, 1)), min_size=2, max_size=4))
def test_random_tables_with_a_total_row_keep_their_range(sites):
    df = total_row_table([(f"site {k}", r, int(r * share)) for k, (r, share) in enumerate(sites)])
    assert range_leaks(df, TOTAL_ROW_SPEC) == []


@settings(max_examples=15, deadline=None, database=None)
@given(st.lists(st.tuples(small_counts, small_counts, small_counts), min_size=2, max_size=3))
def test_random_two_way_tables_with_margins_keep_their_range(grid):
    df = margins_table(grid, [f"payer {k}" for k in range(len(grid))])
    assert range_leaks(df, MARGINS_SPEC) == []


RANGE_VIEWS = [{}, {"sites": "Northside"}, {"payers": "medicaid"}, {"sites": "Eastgate", "payers": "commercial"}]


def _rows_worth_attacking(raw, shown, why, spec, limit: int) -> list[int]:
    """Row positions with a protected value, distinct raw rows only, rows with a complement first."""
    counts = [c for c in spec.get("counts", []) if c in raw]
    keep = raw[counts].notna().all(axis=1).to_numpy()
    small = raw[counts].apply(lambda s: s.between(1, 10)).to_numpy().any(axis=1)
    rests = np.zeros(len(raw), dtype=bool)
    for num, den in (spec.get("rates") or {}).values():
        rests |= (raw[den] - raw[num]).between(1, 10).to_numpy()
    hiding = (why == sup.COMPLEMENT).to_numpy().any(axis=1)
    seen, order = set(), []
    for i in sorted(np.flatnonzero(keep & (small | rests)), key=lambda i: (not hiding[i], i)):
        key = tuple(raw.iloc[i][counts])
        if key not in seen:
            seen.add(key)
            order.append(int(i))
    return order[:limit]


@pytest.mark.parametrize("view", RANGE_VIEWS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "all")
def test_catalog_queries_keep_every_small_value_in_range_on_demo_data(demo_db, catalog, view):
    """Every catalog query with declared sums or rates, on the demo data with several filters: the range
    attacker, row by row (no catalog query declares total rows), on up to 25 distinct rows each."""
    from outcomes.catalog import runner

    attacked = 0
    for name, query in sorted(catalog.items()):
        spec = query.suppress
        if not (spec.get("totals") or spec.get("rates") or spec.get("total_rows")):
            continue
        given = {k: v for k, v in view.items() if k in query.params}
        raw = runner.run(demo_db, query, given, raw=True).data
        result = runner.run(demo_db, query, given)
        for i in _rows_worth_attacking(raw, result.data, result.reasons, spec, 25):
            one = raw.iloc[[i]].reset_index(drop=True)
            found = range_leaks(one, spec, result.data.iloc[[i]], result.reasons.iloc[[i]])
            assert found == [], f"{name} {given} row {i}: {found}"
            attacked += 1
    assert attacked > 40


def test_no_count_of_11_or_more_is_called_small(demo_db, catalog):
    """Over every catalog query on the demo, raw against suppressed, in several views: a cell whose reason is
    small is a count of 1 to 10, or a rate or stat from one; "1–10" is only ever a count of 1 to 10; every
    hidden cell has a reason and every shown cell none."""
    from outcomes.catalog import runner

    labelled = 0
    for name, query in sorted(catalog.items()):
        for view in RANGE_VIEWS:
            given = {k: v for k, v in view.items() if k in query.params}
            raw = runner.run(demo_db, query, given, raw=True).data
            result = runner.run(demo_db, query, given)
            why, mask = result.reasons, result.mask
            assert ((why != "").to_numpy() == mask.to_numpy()).all(), name
            screen = sup.for_screen(result.data, mask, query.suppress, why)
            counts = [c for c in query.suppress.get("counts", []) if c in raw]
            for col in raw.columns:
                small = (why[col] == sup.SMALL).to_numpy()
                if col in counts:
                    values = pd.to_numeric(raw[col])
                    assert values[small].between(1, 10).all(), f"{name}.{col}: a count of 11+ called small"
                    assert not values[(why[col] == sup.COMPLEMENT).to_numpy()].between(1, 10).any(), name
                    assert (screen[col] == sup.SMALL_LABEL).to_numpy().sum() == small.sum()
                    labelled += int(small.sum())
                else:
                    assert not (screen[col] == sup.SMALL_LABEL).any(), f"{name}.{col}: '1–10' on a rate or stat"
    assert labelled > 100


# --- exports equal the screen, and formulas are neutralised ------------------------------------------------

EXPORT_PAGE = "pages/engagement.py"


def test_exported_csv_is_the_data_on_screen(demo_db_path, monkeypatch):
    """Each CSV a page offers is made from exactly the suppressed frame its table shows (and its chart draws),
    and the cells hidden on screen are the cells empty in the file."""
    import streamlit as st
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.testing.v1 import AppTest

    from outcomes.web import panels, queries

    monkeypatch.setenv("OUTCOMES_DB", str(demo_db_path))
    st.cache_data.clear()
    st.cache_resource.clear()
    tabled, handed, files = [], [], []
    real_table, real_record, real_add = panels.format_table, queries.record_run, MediaFileManager.add_deferred

    def spy_table(df, mask, query, why=None):
        tabled.append((query.name, df.copy(), mask.copy(), why.copy()))
        return real_table(df, mask, query, why)

    def spy_record(key, result):  # every catalog result a page receives is recorded, cached or just run
        rows = result if isinstance(result, queries.Rows) else result.rows
        handed.append((key[0], rows.data.copy()))
        return real_record(key, result)

    def spy_add(self, data_callable, *args, **kwargs):
        files.append((kwargs.get("file_name"), data_callable))
        return real_add(self, data_callable, *args, **kwargs)

    monkeypatch.setattr(panels, "format_table", spy_table)
    monkeypatch.setattr(queries, "record_run", spy_record)
    monkeypatch.setattr(MediaFileManager, "add_deferred", spy_add)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    for seen in (tabled, handed, files):  # the default page ran first; keep only the page under test
        seen.clear()
    at.switch_page(EXPORT_PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    for seen in (tabled, handed, files):  # tables are drawn once opened: keep the run that shows them
        seen.clear()
    open_tables(at)
    assert not at.exception, [e.value for e in at.exception]
    csvs = []
    for name, make in files:
        if name and name.endswith(".csv"):
            payload = make()  # what the browser receives when the button is clicked
            csvs.append(payload.decode() if isinstance(payload, bytes) else payload)
    assert tabled and len(csvs) == len(tabled), "every table on the page has its CSV"
    assert any(mask.to_numpy().any() for _, _, mask, _ in tabled), "some cells are hidden, so the test means something"
    for (name, df, mask, why), payload, shown in zip(tabled, csvs, at.table):
        assert payload == output.export_csv(df, why), f"{name}: the CSV is not the frame on screen"
        source = next(d for n, d in handed if n == name)
        assert list(df.columns) == list(source.columns), f"{name}: the table is not the query's suppressed frame"
        exported = pd.read_csv(io.StringIO(payload), keep_default_na=True)
        table = shown.value.rename(columns={labels.column(c): c for c in df.columns})  # headings read as words
        assert len(exported) == len(table) == len(df)
        for col in df.columns:
            hidden_on_screen = (
                table[col].astype(str).isin([sup.SMALL_LABEL, sup.FEW_LABEL, sup.COMPLEMENT_LABEL]).to_numpy()
            )
            assert not (hidden_on_screen & exported[col].notna().to_numpy()).any(), (
                f"{name}.{col}: hidden cell exported"
            )
            assert (mask[col].to_numpy() <= exported[col].isna().to_numpy()).all(), f"{name}.{col}"


HOSTILE = ['=HYPERLINK("http://x.invalid","click")', "+1+2", "-2+3", "@SUM(A1)", "\tlead", "\rcr", "plain", "Northside"]


def hostile_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site": HOSTILE,
            "count": [-5, -1, 0, 1, 12, 13, -40, 7],
            "rate": [-0.25, 0.5, -1.5, 0.0, 1.0, 0.3, -0.01, 0.9],
            "month": pd.to_datetime(["2025-01-01"] * 8),
        }
    )


def test_csv_neutralises_formulas_and_keeps_numbers():
    text = output.to_csv(hostile_frame())
    back = pd.read_csv(io.StringIO(text), keep_default_na=False)
    expected = ["'" + v for v in HOSTILE[:6]] + HOSTILE[6:]
    assert back["site"].tolist() == [v.replace("\r", "\n") for v in expected]  # a bare CR would split the row
    assert len(back) == len(HOSTILE)
    assert back["count"].tolist() == [-5, -1, 0, 1, 12, 13, -40, 7]
    assert back["rate"].tolist()[0] == -0.25 and back["month"][0] == "2025-01-01"
    for line in text.splitlines()[1:]:
        assert not line.startswith(("=", "+", "@")), line


def test_excel_neutralises_formulas_and_keeps_numbers():
    book = openpyxl.load_workbook(io.BytesIO(output.to_excel(hostile_frame())))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    site = [r[header.index("site")] for r in rows]
    count = [r[header.index("count")] for r in rows]
    assert site[0] == '\'=HYPERLINK("http://x.invalid","click")' and site[7] == "Northside"
    assert all(isinstance(v, str) and not v.startswith(("=", "+", "-", "@")) for v in site)
    assert count == [-5, -1, 0, 1, 12, 13, -40, 7] and all(isinstance(v, int) for v in count)
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", f"{cell.coordinate} is a formula"
    assert isinstance(rows[0][header.index("rate")], float) and rows[0][header.index("rate")] == -0.25


def test_neutralise_leaves_numeric_and_missing_values_alone():
    df = pd.DataFrame({"n": pd.array([-3, None, 4], dtype="Int64"), "x": [-1.5, np.nan, 2.0], "s": ["-3", None, "ok"]})
    out = output.neutralise(df)
    assert out["n"].equals(df["n"]) and out["x"].equals(df["x"])
    assert out["s"][0] == "'-3" and pd.isna(out["s"][1]) and out["s"][2] == "ok"


# --- the minimum population ----------------------------------------------------------------------------


@pytest.fixture
def headline_app(build_db, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    con = build_db("headline", "2025-06-30")
    path = con.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()[0]
    monkeypatch.setenv("OUTCOMES_DB", path)
    st.cache_data.clear()
    st.cache_resource.clear()

    def make(**query):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        for k, v in query.items():
            at.query_params[k] = v
        return at

    yield make
    st.cache_data.clear()
    st.cache_resource.clear()


def _texts(at) -> str:
    return " ".join(str(e.value) for e in list(at.info) + list(at.warning) + list(at.markdown) + list(at.caption))


def test_a_tiny_group_shows_too_few_clients(headline_app):
    at = headline_app(sites="Southside")  # 9 clients
    at.run()
    at.switch_page("pages/stepdown.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Too few clients to show" in _texts(at)
    assert not at.get("plotly_chart") and not at.get("download_button") and not at.table and not at.dataframe


def test_the_whole_fixture_is_enough_clients(headline_app):
    at = headline_app()
    at.run()
    at.switch_page("pages/stepdown.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Too few clients to show" not in _texts(at)
    assert at.get("download_button")


def test_population_query_counts_distinct_clients(build_db, run_query):
    con = build_db("headline", "2025-06-30")
    assert run_query(con, "population")["clients"].tolist() == [20]
    assert run_query(con, "population", raw=False, sites=["Southside"])["clients"].isna().all()  # 9: hidden
    assert run_query(con, "population", sites=["Northside"])["clients"].tolist() == [13]
    assert run_query(con, "population", end="2000-01-01")["clients"].tolist() == [0]


# --- survival curves --------------------------------------------------------------------------------------

CURVES = {  # query: (group columns, at_risk, events, estimate, per-group event total or None)
    "iop_retention": (["entry_route", "track"], "at_risk", "dropouts", "retained", None),
    "time_to_stepdown": (["reason_group"], "at_risk", "stepped_on_day", "cumulative_share", "stepped_by_max_day"),
}
CURVE_CASES = [(q, p) for q in CURVES for p in ({}, {"sites": "Northside"}, {"sites": "Eastgate", "max_day": 60})]


def test_published_points_of_a_hand_made_curve():
    """at_risk 40 38 35 30 18 15 12 11 9, events 0 2 3 12 1 2 0 0 0. Day 0 is shown (nothing left yet). Days 1-3:
    events since day 0 are 2, 5, 17 but exits 2, 5, 10, so not yet; day 4: 18 events, 22 exits: shown. Days 5-7
    add 2, 4, 4 events: too few; day 8 has 9 at risk. Only day 0's own events are known."""
    shown, own = sup.published_points(
        np.array([40, 38, 35, 30, 18, 15, 12, 11, 9]), np.array([0, 2, 3, 12, 1, 2, 0, 0, 0])
    )
    assert np.flatnonzero(shown).tolist() == [0, 4]
    assert np.flatnonzero(own).tolist() == [0]


def test_a_known_days_censorings_must_not_be_small():
    """at_risk 50 35 20, events 12 0 0: day 0 shows 12 dropouts; showing day 1 (35 at risk, 15 gone) would tell
    that 3 were censored on day 0, so day 1 is skipped; day 2 (30 gone, none of it a known day's count) is shown."""
    shown, own = sup.published_points(np.array([50, 35, 20]), np.array([12, 0, 0]))
    assert shown.tolist() == [True, False, True] and own.tolist() == [True, False, False]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(st.integers(0, 14), st.integers(0, 14)), min_size=1, max_size=40), st.integers(11, 400))
def test_published_points_keep_every_step_safe(days, everyone):
    """For any curve: between consecutive shown days the events and the exits are 0 or 11+, every shown day has
    11+ at risk, and where a day's own events are shown the day before is shown and its censorings are safe."""
    at_risk, events, n = [], [], everyone
    for d, c in days:
        if n <= 0:
            break
        d = min(d, n)
        at_risk.append(n)
        events.append(d)
        n -= d + min(c, n - d)
    at_risk, events = np.array(at_risk), np.array(events)
    shown, own = sup.published_points(at_risk, events)
    safe = lambda v: v == 0 or v >= 11
    last, last_n = -1, at_risk[0]
    for b in np.flatnonzero(shown):
        assert at_risk[b] >= 11 and safe(events[last + 1 : b + 1].sum()) and safe(last_n - at_risk[b])
        if own[b] and last >= 0 and own[last]:
            assert safe(at_risk[last] - at_risk[b] - events[last])
        last, last_n = b, at_risk[b]
    assert not (own & ~shown).any()
    assert all(shown[b - 1] for b in np.flatnonzero(own) if b > 0)


def _curve_truth(at_risk, events, total=None) -> pd.DataFrame:
    df = pd.DataFrame({"g": "a", "day": range(len(at_risk)), "at_risk": at_risk, "events": events})
    df["estimate"] = np.cumprod(1 - df["events"] / df["at_risk"])
    if total is not None:
        df["total"] = total
    return df


CURVE_SPEC = {
    "keys": ["day"],
    "counts": ["at_risk", "events"],
    "stats": {"estimate": "at_risk"},
    "curve": {"by": ["g"], "x": "day", "at_risk": "at_risk", "events": "events", "estimate": "estimate"},
}


def test_a_curve_is_shown_only_at_its_published_days_and_rounded():
    truth = _curve_truth([40, 38, 35, 30, 18, 15, 12, 11, 9], [0, 2, 3, 12, 1, 2, 0, 0, 0])
    shown, mask = sup.suppress(truth, CURVE_SPEC)
    assert shown["estimate"].notna().tolist() == [True, False, False, False, True, False, False, False, False]
    assert shown["at_risk"].notna().tolist() == [True, False, False, False, True, False, False, False, False]
    assert shown["events"].notna().tolist() == [True] + [False] * 8
    # (1 - 2/38) (1 - 3/35) (1 - 12/30) (1 - 1/18) = 36/38 * 32/35 * 18/30 * 17/18 = 0.49083 -> 0.491
    assert shown.at[4, "estimate"] == 0.491 and truth.at[4, "estimate"] == pytest.approx(0.49083, abs=1e-5)
    assert mask.equals(shown.isna())


def test_a_curve_total_that_gives_the_tail_back_is_hidden():
    spec = CURVE_SPEC | {"counts": ["at_risk", "events", "total"], "curve": CURVE_SPEC["curve"] | {"total": "total"}}
    # day 1 (14 events, 14 censored on day 0) is shown; day 2's 3 events are not, and total 17 would tell them
    hidden = sup.suppress(_curve_truth([40, 26, 11], [0, 14, 3], total=17), spec)[0]
    assert hidden["total"].isna().all() and hidden["events"].notna().tolist() == [True, True, False]
    shown = sup.suppress(_curve_truth([40, 26, 11], [0, 14, 0], total=14), spec)[0]
    assert (shown["total"] == 14).all()


class CurveAttack:
    """Integer program over one curve's daily events d_t and censorings c_t (t = 0..L), from what is published:
    every shown at_risk (n_t = n_0 - sum of exits before t), every shown daily count, the event total, and (a
    stronger attacker than the rounded curve allows) the exact events between consecutive shown curve values."""

    def __init__(self, shown: pd.DataFrame, at_risk: str, events: str, estimate: str, total: str | None):
        self.size = len(shown)
        self.rows: list[tuple[np.ndarray, float]] = []
        self.ok = pd.notna(shown[at_risk].iloc[0])
        if not self.ok:
            return
        n0 = float(shown[at_risk].iloc[0])
        for t in range(1, self.size):
            if pd.notna(shown[at_risk].iloc[t]):
                self.equal(
                    {**{("d", s): 1 for s in range(t)}, **{("c", s): 1 for s in range(t)}},
                    n0 - float(shown[at_risk].iloc[t]),
                )
        for t in range(self.size):
            if pd.notna(shown[events].iloc[t]):
                self.equal({("d", t): 1}, float(shown[events].iloc[t]))
        self.published = [t for t in range(self.size) if pd.notna(shown[estimate].iloc[t])]
        if total and pd.notna(shown[total].iloc[0]):
            self.equal({("d", s): 1 for s in range(self.size)}, float(shown[total].iloc[0]))
        self.everyone = n0

    def equal(self, coefs: dict, rhs: float) -> None:
        a = np.zeros(2 * self.size)
        for (kind, t), c in coefs.items():
            a[t if kind == "d" else self.size + t] = c
        self.rows.append((a, rhs))

    def learn_steps(self, raw_events: np.ndarray) -> None:
        last = -1
        for b in self.published:
            self.equal({("d", s): 1 for s in range(last + 1, b + 1)}, float(raw_events[last + 1 : b + 1].sum()))
            last = b

    def bounds(self, kind: str, t: int) -> tuple[float, float]:
        from scipy.optimize import Bounds, LinearConstraint, milp

        m = 2 * self.size
        cons = [
            LinearConstraint(np.array([a for a, _ in self.rows]), [b for _, b in self.rows], [b for _, b in self.rows])
        ]
        cons.append(LinearConstraint(np.ones((1, m)), 0, self.everyone))  # nobody exits twice
        c = np.zeros(m)
        c[t if kind == "d" else self.size + t] = 1
        out = []
        for sign in (1, -1):
            res = milp(sign * c, constraints=cons, integrality=np.ones(m), bounds=Bounds(0, self.everyone))
            assert res.success, res.message
            out.append(sign * res.fun)
        return out[0], out[1]


def attack_curves(con, query, params: dict, limit: int = 80) -> tuple[list, int]:
    """(cells pinned, cells attacked): the step formula (events = at_risk x (1 - S(t) / S(t-1))) on consecutive
    shown days, then an integer program over everything published, for each hidden daily event count and each
    day's censorings of 1-10."""
    from outcomes.catalog import runner

    by, at_risk, events, estimate, total = CURVES[query.name]
    raw = runner.run(con, query, params, raw=True).data
    shown = runner.run(con, query, params).data
    pinned, attacked = [], 0
    for key, idx in raw.groupby(by if len(by) > 1 else by[0], sort=False).groups.items():
        r, s = raw.loc[idx].sort_values("day"), shown.loc[idx].sort_values("day")
        d = r[events].to_numpy(dtype=int)
        for i in range(1, len(s)):
            if pd.isna(s[events].iloc[i]) and s[[at_risk, estimate]].iloc[[i - 1, i]].notna().all().all():
                before, now = s[estimate].iloc[i - 1], s[estimate].iloc[i]
                if query.name == "time_to_stepdown":
                    before, now = 1 - before, 1 - now
                if 1 <= d[i] <= 10 and round(s[at_risk].iloc[i] * (1 - now / before)) == d[i]:
                    pinned.append((key, i, "step formula", d[i]))
        attacker = CurveAttack(s, at_risk, events, estimate, total)
        if not attacker.ok:
            continue
        n = r[at_risk].to_numpy(dtype=int)
        c = np.append(n[:-1] - n[1:] - d[:-1], 0)
        attacker.learn_steps(d)
        for t in range(len(r)):
            for kind, value, hidden in (("d", d[t], pd.isna(s[events].iloc[t])), ("c", c[t], t < len(r) - 1)):
                if hidden and 1 <= value <= 10 and attacked < limit:
                    lo, hi = attacker.bounds(kind, t)
                    assert lo - 1e-6 <= value <= hi + 1e-6, "the attacker's model excludes the truth"
                    attacked += 1
                    if hi - lo < 0.5:
                        pinned.append((key, t, kind, value))
    return pinned, attacked


@pytest.mark.parametrize("name,params", CURVE_CASES)
def test_survival_curves_do_not_give_their_daily_counts_back(demo_db, catalog, name, params):
    pinned, attacked = attack_curves(demo_db, catalog[name], params)
    assert attacked > 10
    assert pinned == []


@pytest.mark.parametrize("name", CURVES)
def test_without_the_curve_rule_daily_counts_come_back(demo_db, catalog, name, monkeypatch):
    """The attacker is real: with only primary suppression it recovers hidden daily counts of the same curves."""
    monkeypatch.setattr(sup, "curve_mask", lambda df, mask, curve: mask)
    pinned, _ = attack_curves(demo_db, catalog[name], {"sites": "Northside"}, limit=40)
    assert len(pinned) >= 5


def test_the_retention_tile_hides_a_value_that_gives_small_dropouts_back():
    """kpi_iop_retention: with 5 dropouts in 200 admissions the retained share would tell the 5."""
    spec = {"counts": ["admissions", "at_risk", "dropouts"], "stats": {"retained": ["at_risk", "dropouts"]}}
    truth = pd.DataFrame(
        {
            "admissions": [200, 200, 200],
            "at_risk": [150, 150, 150],
            "dropouts": [5, 0, 40],
            "retained": [0.975, 1.0, 0.8],
        }
    )
    shown, _ = sup.suppress(truth, spec)
    assert shown["retained"].isna().tolist() == [True, False, False]


def test_catalog_rejects_a_bad_curve(tmp_path):
    from outcomes.catalog.query import CatalogError, parse

    base = (
        "-- title: t\n-- description: d\n-- suppress:\n--   counts: [n, d]\n--   stats: {{s: n}}\n{extra}"
        "select 'a' as g, 0 as day, 20 as n, 0 as d, 1.0 as s\n"
    )
    good = tmp_path / "good.sql"
    good.write_text(base.format(extra="--   curve: {by: [g], x: day, at_risk: n, events: d, estimate: s}\n"))
    assert parse(good).suppress["curve"]["events"] == "d"
    for extra in (
        "--   curve: {by: [g], x: day, at_risk: n, events: d}\n",
        "--   curve: {by: g, x: day, at_risk: n, events: d, estimate: s}\n",
        "--   curve: {by: [g], x: day, at_risk: s, events: d, estimate: s}\n",
        "--   curve: {by: [g], x: day, at_risk: n, events: d, estimate: s, total: zz}\n",
    ):
        bad = tmp_path / "bad.sql"
        bad.write_text(base.format(extra=extra))
        with pytest.raises(CatalogError, match="bad.sql"):
            parse(bad)
