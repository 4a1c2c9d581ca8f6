"""The site comparison on screen (queries/site_comparison.sql): the funnel plot beside raw and adjusted rates per
site, whether the case-mix model converged, and the odds ratios and factor effects behind the expected counts.

A page places it like any panel, `page.panel("site_comparison", measure="stepdown_14", rate="raw_rate")`
(`rate`, adjusted_rate or raw_rate, is the funnel plot's, from the header's `chart:`). Everything shown comes
from the runner's suppressed result; its tables beside the result (odds ratios, factor effects) hold no counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import duckdb
import pandas as pd
import streamlit as st

from outcomes.catalog import runner
from outcomes.catalog.query import Query
from outcomes.ingest import db
from outcomes.kept import later
from outcomes.measures.casemix import FACTORS, MIN_LEVEL
from outcomes.present import alt_text, charts, files
from outcomes.present.pdf import Chart
from outcomes.present.tables import format_table
from outcomes.web import context, database, prefetch, queries
from outcomes.web.database import info, root_connection
from outcomes.web.downloads import download, exports
from outcomes.web.panels import Panel, n_note, table_expander
from outcomes.web.plotted import made, plot
from outcomes.web.reuse import reused

MEASURES = {
    "stepdown_7": "7-day step-down",
    "stepdown_14": "14-day step-down",
    "stepdown_30": "30-day step-down",
    "followup_7": "7-day follow-up",
    "followup_30": "30-day follow-up",
    "iop_completion": "IOP completion",
}
POPULATIONS = {  # eligible and observed of each measure, as the definition popover puts them
    "stepdown": "residential discharges less deaths, incarcerations, direct transfers and windows not yet complete "
    "(as in the step-down rate); observed: an attended IOP session, any site, on day 0 to day {days}",
    "followup": "residential and withdrawal management discharges with a complete window (as in FUI-aligned "
    "follow-up); observed: an attended PHP, IOP or OP session on day 1 to day {days}",
    "iop": "IOP discharges (as in IOP completion by month of discharge); observed: discharge reason completed",
}
METHOD = f"""
- **Expected**: a logistic regression (statsmodels GLM, binomial) of the outcome on the factors below, fitted over
  every eligible episode at **every site** in the range, so a view of one site gets the same expected values as a
  view of all. The sites filter and your site scope choose the sites shown; the client-group filters narrow the
  episodes fitted. A site's expected count is the sum of its episodes' predicted probabilities.
- **O/E** = observed / expected, with a 95% interval treating observed as Poisson with mean expected (Byar).
- **Adjusted rate** = O/E × the all-site rate (indirect standardisation).
- **Funnel limits**: exact binomial 95% and 99.8% limits around the all-site rate at each site's number of
  eligible episodes (Spiegelhalter 2005). A site is flagged **above** or **below** when its adjusted rate lies
  outside the 99.8% limits.
- If the model does not converge (e.g. a factor level predicts the outcome exactly), raw rates only are shown.

**Case-mix factors** (a missing value is a level of its own; a level with fewer than {MIN_LEVEL} episodes is
counted with its factor's most common level):
""" + "\n".join(f"- {name}" for name in FACTORS.values())
TWO_DECIMALS = ("oe_ratio", "oe_low", "oe_high")
PERCENT = ("limit95_low", "limit95_high", "limit998_low", "limit998_high")
EFFECTS_NOTE = (
    "How much adjusting for each factor moved each site's expected count: the full model's expected against the "
    "model refitted without that factor, in per cent. Negative: on that factor the site's clients are less likely "
    "than average to have the outcome, so adjusting for it lowers what is expected of the site."
)


class Comparison(NamedTuple):
    """A site comparison as a page may show it: the suppressed rows, the model's notes and its tables."""

    rows: queries.Rows
    notes: tuple[str, ...]
    details: Mapping[str, pd.DataFrame]  # made when first read (outcomes.kept.Later)

    def view(self) -> Comparison:
        """The same result in frames of the caller's own (see queries.Rows.view)."""
        return Comparison(self.rows.view(), self.notes, later(self.details, lambda frame: frame.copy(deep=False)))


@st.cache_resource(max_entries=256, show_spinner=False)  # see queries.cached_run; callers get views
def cached_result(name: str, items: tuple, version: db.DataVersion, scope: tuple | None) -> Comparison:
    # queries.cached_run's key, keeping the notes and tables a model query returns beside its rows
    result = runner.run(
        root_connection(version),
        database.catalog_seen()[name],  # not the run's: this also runs on the prefetch thread, outside any session
        dict(items),
        scope=scope,
        data_through=info(version)["data_through"],
    )
    return Comparison(queries.Rows(result.data, result.mask, result.reasons), tuple(result.notes), result.details)


def run(name: str, values: dict) -> Comparison:
    """cached_result for this run's data version and site scope, after the minimum-population check."""
    queries.require_population()
    key = queries.run_key(name, values)
    try:
        comparison = cached_result(*key)
    except (db.VersionGone, duckdb.ConnectionException):
        context.restart()
    queries.record_run(key, comparison)
    return comparison.view()


def fit_state(comparison: Comparison) -> tuple[bool, str]:
    """(converged, what to tell the reader about the fit)."""
    model = comparison.details.get("model")
    if model is None or model.empty:
        return False, " ".join(comparison.notes) or "No eligible episodes in this range."
    return bool(model["converged"].iloc[0]), str(model["message"].iloc[0])


def population(measure: str) -> str:
    """Who is counted for `measure`, in words."""
    kind, _, days = measure.partition("_")
    return POPULATIONS[kind].format(days=days)


def heading(query: Query, title: str, measure: str) -> None:
    """Title with a Definition popover holding the population, the method and the factor list."""
    with st.container(horizontal=True, vertical_alignment="center", wrap=False):
        st.subheader(title, width="stretch")
        with st.popover("Definition"):
            st.markdown(f"**What it means**\n\n{query.lead}")
            st.markdown(f"**{MEASURES[measure]}.** Eligible: {population(measure)}, at the site of the episode.")
            st.markdown(METHOD)
            with st.expander("Exact rules"):  # the analysts' wording, parameter names and all
                st.markdown(f"**{query.title}**\n\n{query.description}")
            st.caption(
                f"Query: `queries/{query.path.name}` · method, references and how to read a flag: "
                "`docs/measures/site_comparison.md`"
            )
    st.caption(query.lead)


def flags_text(df: pd.DataFrame) -> str:
    """Which sites the 99.8% limits flag, in words."""
    parts = [
        f"{', '.join(df.loc[df['flag'] == flag, 'site'])} {flag}"
        for flag in ("below", "above")
        if (df["flag"] == flag).any()
    ]
    if parts:
        return "Outside the 99.8% limits: " + "; ".join(parts) + ". A flag is a prompt to look, not a verdict."
    if df["flag"].notna().any():
        return "No site is outside the 99.8% limits."
    return ""


def odds_table(odds: pd.DataFrame) -> pd.DataFrame:
    """The odds ratios as text: odds ratio and 95% interval to two decimals, and why a level has none."""

    def two(v):
        return "" if pd.isna(v) else f"{v:.2f}"

    return pd.DataFrame(
        {
            "Factor": odds["factor"],
            "Level": odds["level"],
            "Odds ratio": odds["odds_ratio"].map(two),
            "95% interval": [
                "" if pd.isna(lo) else f"{lo:.2f}–{hi:.2f}" for lo, hi in zip(odds["or_low"], odds["or_high"])
            ],
            "Note": odds["note"],
        }
    )


def effects_table(effects: pd.DataFrame) -> pd.DataFrame:
    """Factor by site: the change in the site's expected count from adjusting for the factor, in per cent."""
    if effects.empty:
        return pd.DataFrame()
    share = effects["change"] / effects["expected_without"]
    text = ["hidden" if pd.isna(v) else f"{v:+.1%}" if round(v, 3) else "0.0%" for v in share]
    wide = effects.assign(text=text).pivot(index="factor", columns="site", values="text")
    wide = wide.reindex([f for f in FACTORS.values() if f in wide.index])
    return wide.rename_axis(columns=None).reset_index().rename(columns={"factor": "Factor"})


def result_table(df: pd.DataFrame, mask: pd.DataFrame, query: Query, why: pd.DataFrame) -> pd.DataFrame:
    """The result as text, with O/E to two decimals and the limits as percentages."""
    out = format_table(df, mask, query, why)
    for cols, text in ((TWO_DECIMALS, "{:.2f}".format), (PERCENT, "{:.1%}".format)):
        for col in cols:
            shown = ~mask[col] & df[col].notna()
            out.loc[shown, col] = df.loc[shown, col].map(text)
    return out


def factors_box(key: str, comparison: Comparison) -> None:
    """The expander with the model's odds ratios and what each factor moved (drawn only while open)."""
    box = st.expander(
        "Case-mix factors: odds ratios and what they moved", key=f"table-{key}-factors", on_change="rerun"
    )
    with box:
        if not box.open:
            return
        odds = comparison.details.get("odds_ratios")
        if odds is not None and not odds.empty:
            st.caption(
                "Odds ratio of the outcome against the factor's reference level, from the model over every site."
            )
            st.table(odds_table(odds), hide_index=True, alt="Odds ratios of the case-mix factors")
        effects = effects_table(comparison.details.get("factor_effects", pd.DataFrame()))
        if not effects.empty:
            st.caption(EFFECTS_NOTE)
            st.table(effects, hide_index=True, alt="What each case-mix factor moved, by site")


def figures(query: Query, chart: dict, df: pd.DataFrame, converged: bool, key: tuple):
    """(funnel plot, raw against adjusted rates) of suppressed rows; raw rates only when the fit failed."""
    if not converged:
        chart = chart | {"rate": "raw_rate"}
    funnel = reused(("casemix-funnel", repr(chart), key), lambda: charts.figure(chart, df))
    rates_spec = {"kind": "rate_comparison", "adjusted": converged}
    rates = reused(("casemix-rates", repr(rates_spec), key), lambda: charts.figure(rates_spec, df))
    return funnel, rates


RATES_TEXT = {"kind": "rate_comparison", "ys": {"raw_rate": "Raw rate", "adjusted_rate": "Adjusted rate"}}


def words(chart: dict, df: pd.DataFrame, title: str, converged: bool, rows_key: tuple | None = None) -> list[str]:
    """The text alternatives of the funnel plot and the rates chart; `rows_key` (the run's key) lets a rerun, or
    the prefetch thread ahead of it, build them once."""
    rates_text = RATES_TEXT if converged else {"kind": "rate_comparison", "ys": {"raw_rate": "Raw rate"}}
    out = []
    for spec, what in (
        (chart if converged else chart | {"rate": "raw_rate"}, title),
        (rates_text, f"{title}: raw and adjusted rates" if converged else f"{title}: raw rates"),
    ):
        out.append(
            reused(
                ("casemix-alt", repr(spec), what, rows_key) if rows_key else None,
                lambda spec=spec, what=what: alt_text.summary(spec, df, what),
            )
        )
    return out


def draw_figures(
    funnel, rates, key: str, chart: dict, df: pd.DataFrame, title: str, converged: bool, rows_key: tuple | None = None
) -> None:
    """Both figures side by side, each with its text alternative (alt and a caption under it)."""
    left, right = st.columns([3, 2], gap="large")
    for col, fig, said, suffix in zip(
        (left, right), (funnel, rates), words(chart, df, title, converged, rows_key), ("", "-rates")
    ):
        with col:
            plot(fig, f"chart-{key}{suffix}", said)
            st.caption(said)


class SiteComparisonPanel(Panel):
    """The site comparison as a page draws it (see the module docstring)."""

    @property
    def measure(self) -> str:
        return self.values()["measure"]

    @property
    def key(self) -> str:
        return f"{self.query.name}-{self.measure}"  # a page may show several measures

    def title(self) -> str:
        return f"Sites compared for case mix: {MEASURES[self.measure]}"

    def start(self):
        """Draw the heading now, start the query, and return the function that draws the rest in place."""
        heading(self.query, self.title(), self.measure)
        holder = st.container()
        values = queries.given(self.query.name, self.params)
        result = queries.start(self.query.name, values, cached=cached_result)
        key = queries.run_key(self.query.name, values)

        def both(args: tuple) -> None:  # both figures and their words, for another site choice (prefetch)
            comparison = cached_result(*args)
            df = comparison.rows.data
            converged, _ = fit_state(comparison)
            if df.empty:
                return
            chart = charts.spec(self.query.chart, self.values(), self.chart_options)
            built = figures(self.query, chart, df, converged, args)
            if None not in built:
                words(chart, df, self.title(), converged, args)
                for fig in built:
                    made(fig)

        if self.query.takes("sites"):
            ahead = prefetch.Made(("casemix", self.key, repr(self.values()), repr(self.chart_options)), both)
            prefetch.note(lambda choice: (ahead, (prefetch.swap_sites(key, choice),)))

        def draw() -> list[Chart] | None:
            with holder:
                return self._draw(result(), values)

        return draw

    def _draw(self, comparison: Comparison, values: dict) -> list[Chart] | None:
        query = self.query
        df, mask, why = comparison.rows
        converged, message = fit_state(comparison)
        if df.empty:  # no eligible episodes at all (the model's message says so), or none at the sites shown
            st.info(message if not comparison.details else "No data match these filters.")
            return None
        chart = charts.spec(query.chart, self.values(), self.chart_options)
        run_key = queries.run_key(query.name, values)
        if converged:
            st.caption(f"Case-mix model: {message}")
        else:
            st.warning(f"Case-mix model: {message}", icon=":material/warning:")
        note = reused(
            ("casemix-note", run_key),
            lambda: n_note(query, df, mask, "eligible").replace(" eligible", " eligible episodes", 1),
        )
        adjusted = converged and chart.get("rate") == "adjusted_rate"
        lines = [note, reused(("casemix-flags", run_key), lambda: flags_text(df)) if adjusted else ""]
        funnel, rates = figures(query, chart, df, converged, run_key)
        if funnel is None or rates is None:
            st.info("The all-site rate is hidden (its counts are 1–10), so there is nothing to compare against.")
            return None
        draw_figures(funnel, rates, self.key, chart, df, self.title(), converged, run_key)
        caption = " · ".join(x for x in lines if x)
        if caption:
            st.caption(caption)
        with st.container(horizontal=True, vertical_alignment="top"):
            with (box := table_expander(self.key)):
                if box.open:
                    st.table(result_table(df, mask, query, why), hide_index=True, alt=f"{self.title()}: by site")
            download(
                "CSV",
                lambda: files.to_csv(df, why),
                f"{self.key}.csv",
                "text/csv",
                key=f"csv-{self.key}",
                query=query.name,
                params=values,
                rows=len(df),
            )
        factors_box(self.key, comparison)
        pdf_note = "\n".join(x for x in (f"Case-mix model: {message}", *lines) if x)
        stamp = repr(run_key) + repr(chart)
        return [
            Chart(self.title(), funnel, pdf_note, "funnel" + stamp),
            Chart(f"{self.title()}: raw and adjusted rates", rates, pdf_note, "rates" + stamp),
        ]


# model post-step -> how a page draws its query (outcomes/web/report.py)
MODEL_PANELS = {"casemix": SiteComparisonPanel}


def explore(query: Query, values: dict) -> pd.DataFrame | None:
    """Explore's view of the site comparison: the fit, both figures (adjusted), the table, the factors and
    the downloads."""
    try:
        comparison = run(query.name, values)
    except (ValueError, PermissionError, runner.QueryTimeout, duckdb.Error) as exc:
        st.error(str(exc).splitlines()[0])
        return None
    df, mask, why = comparison.rows
    converged, message = fit_state(comparison)
    if df.empty:
        st.info("No rows for these parameters and filters.")
        return df
    (st.caption if converged else st.warning)(f"Case-mix model: {message}")
    funnel, rates = figures(query, charts.spec(query.chart), df, converged, queries.run_key(query.name, values))
    if funnel is not None and rates is not None:
        draw_figures(funnel, rates, f"explore-{query.name}", charts.spec(query.chart), df, query.title, converged)
        if converged:
            st.caption(flags_text(df))
    st.dataframe(result_table(df, mask, query, why), hide_index=True, width="stretch")
    factors_box(f"explore-{query.name}", comparison)
    exports(df, query.name, reasons=why, query=query.name, params=values)
    return df
