"""One query on a director page: its heading and definition, the chart its header declares, the n and unstable
notes, and its table and CSV, all from suppressed rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd
import streamlit as st

from outcomes.catalog import grain
from outcomes.catalog.query import Query
from outcomes.measures import kpis
from outcomes.present import alt_text, charts, files, glossary, hidden, labels
from outcomes.present.pdf import Chart
from outcomes.present.tables import format_table
from outcomes.present.theme import label, unstable_count
from outcomes.privacy import categories
from outcomes.privacy.suppress import SMALL
from outcomes.web import chart_notes, context, export_info, prefetch, queries
from outcomes.web.context import catalog
from outcomes.web.database import info
from outcomes.web.downloads import download
from outcomes.web.plotted import made, plot
from outcomes.web.reuse import reused

# The mode bar only while pointing at (or tabbing through) a chart, with three buttons, not eight tab stops
ALL_HIDDEN = (
    "Every value here is hidden: each is a count of 1–10 or would give one away. Widen the filters or the date range."
)


def heading(query: Query, title: str | None = None) -> None:
    """Title with the Definition popover beside it (fits half-width columns), then the one plain sentence of
    what the chart shows."""
    with st.container(horizontal=True, vertical_alignment="center", wrap=False):
        st.subheader(title or query.title, width="stretch")
        with st.popover("Definition"):
            definition(query)
    st.caption(query.lead)


def definition(query: Query) -> None:
    """ "What it means" in plain words, with the terms the chart uses; the exact rules folded under it."""
    st.markdown(f"**What it means**\n\n{query.lead}")
    for term, text in glossary.terms_for(query.chart.get("kind"), query.title, query.panel.get("title") or ""):
        st.markdown(f"**{term}**: {text}")
    with st.expander("Exact rules"):
        st.markdown(f"**{query.title}**\n\n{query.description}")
        if query.definition:
            st.markdown(query.definition.replace("\n", "  \n"))
        st.caption(f"Query: `queries/{query.path.name}`")


def table_expander(key: str):
    """The "Table" expander under a chart. Its content runs only while it is open (opening it reruns the page),
    so a closed table costs a rerun nothing; session state `table-KEY` holds whether it is open."""
    return st.expander("Table", width="stretch", key=f"table-{key}", on_change="rerun")


def keep_rows(rows: queries.Rows, where: dict | None) -> queries.Rows:
    """The rows whose columns hold the given values (`panel: rows:` in a header)."""
    if not where:
        return rows
    keep = pd.Series(True, index=rows.data.index)
    for col, value in where.items():
        keep &= rows.data[col].isin(value if isinstance(value, (list, tuple, set)) else [value])
    return queries.Rows(*(x[keep].reset_index(drop=True) for x in rows), rows.notes, rows.grain)


class Built(NamedTuple):
    """What a panel shows of a run's rows (Panel.built)."""

    kept: queries.Rows  # the rows the panel keeps (`panel: rows:`)
    chart: dict
    note: str = ""  # the n note
    fig: object = None  # None: every value hidden, or no rows
    legend: str = ""  # what the hidden marks mean
    words: str | None = None  # the text alternative
    rows_key: tuple | None = None  # what the rows are the rows of
    fig_key: tuple | None = None  # what the figure is built from


@dataclass
class Panel:
    """A query as a director page draws it, with the page's overrides (parameters, panel vars, chart options)."""

    query: Query
    params: dict = field(default_factory=dict)
    vars: dict = field(default_factory=dict)
    chart_options: dict = field(default_factory=dict)
    pick_grain: bool = False  # the page left the grain to the panel: it offers auto and each grain

    @classmethod
    def of(cls, name: str, overrides: dict) -> Panel:
        """Sort a page's keyword overrides into parameters, panel vars and chart options, refusing the rest."""
        query = catalog()[name]
        declared_vars = query.panel.get("vars") or {}
        builder = charts.BUILDERS.get(query.chart.get("kind"))
        panel = cls(query, vars=dict(declared_vars))
        for k, v in overrides.items():
            if k in query.params:
                panel.params[k] = v
            elif k in declared_vars:
                panel.vars[k] = v
            elif builder and k in builder.params:
                # a switch for an option the header sets (benchmark=False leaves the line out)
                panel.chart_options[k] = query.chart.get(k) if v is True else (None if v is False else v)
            else:
                raise TypeError(f"{name}: {k!r} is not a parameter, a panel var or a chart option")
        if grain.ladder(query) and "grain" not in panel.params:
            panel.params["grain"] = grain.AUTO  # director pages coarsen until the chart can be read
            panel.pick_grain = True
        return panel

    @property
    def key(self) -> str:
        return self.query.name

    def values(self) -> dict:
        """What `{name}` placeholders in the header are filled from: parameter values, then the panel's vars."""
        defaults = {n: p.default for n, p in self.query.params.items()}
        return defaults | self.params | self.vars

    def title(self, chosen: str | None = None) -> str:
        """The panel's title; `{grain}` reads as the grain the rows are at (`chosen`), "period" before a run."""
        values = self.values()
        if "grain" in values:
            values["grain"] = (
                grain.word(chosen or values["grain"]) if values["grain"] != grain.AUTO or chosen else "period"
            )
        return charts.fill(self.query.panel.get("title") or self.query.title, values)

    def start(self):
        """Keep the heading's place (drawn with the result, to name its grain), draw the grain picker, start the
        query, and return the function that draws the rest in place."""
        spec = self.query.panel
        top = st.container()  # the heading, drawn with the result: its title says the grain chosen
        if self.pick_grain:
            self.params["grain"] = st.segmented_control(
                "Per",
                [grain.AUTO, *grain.ladder(self.query)],
                default=grain.AUTO,
                format_func=lambda g: "Auto" if g == grain.AUTO else grain.WORDS[g][1].capitalize(),
                key=f"grain-{self.key}",
                bind="query-params",
                required=True,
                label_visibility="collapsed",
            )
        params, since = _recent(self.params, spec.get("recent_months"), spec.get("recent_weeks"))
        if since:
            st.caption(since)
        holder = st.container()
        values = queries.given(self.query.name, params)
        result = queries.start(self.query.name, values)
        self._ahead(queries.run_key(self.query.name, values))

        def draw() -> Chart | None:
            rows = result()
            with top:
                heading(self.query, self.title(rows.grain))
            with holder:
                return self._draw(lambda: rows, values, since)

        return draw

    def _ahead(self, key: tuple) -> None:
        """Let the prefetch thread build this panel's figure and words for the other site choices (see built)."""
        if not self.query.takes("sites"):
            return
        events_key = chart_notes.events_key()

        def make(args: tuple, events_args: tuple) -> None:
            events = reused(
                ("events", events_args), lambda: chart_notes.Events.of(queries.cached_run(*events_args).data)
            )
            fig = self.built(queries.cached_run(*args).view(), args, events).fig
            if fig is not None:
                made(fig)

        ahead = prefetch.Made(("panel", self.key, repr(self.values()), repr(self.chart_options)), make)
        prefetch.note(
            lambda choice: (ahead, (prefetch.swap_sites(key, choice), prefetch.swap_sites(events_key, choice)))
        )

    def built(self, rows: queries.Rows, key: tuple, events: chart_notes.Events) -> Built:
        """What the panel shows of the rows of the run `key`, drawing nothing: each part reused by what it is
        built from, so a page that shows the same rows again, or the prefetch thread ahead of it, builds it once."""
        query, spec = self.query, self.query.panel
        kept = keep_rows(rows, spec.get("rows"))
        df, mask, why = kept[:3]
        chart = charts.spec(query.chart, self.values(), self.chart_options)
        if df.empty:
            return Built(kept, chart)
        rows_key = (key, repr(spec.get("rows")))  # the same rows for the same run
        n_col = charts.fill(spec.get("n"), self.values()) or chart.get("n")
        note = reused(
            ("note", query.path, repr(query.suppress), query.unstable_below, n_col, repr(spec.get("n_at")), rows_key),
            lambda: n_note(query, df, mask, n_col, spec.get("n_at"), why),
        )
        counts = query.suppress.get("counts", [])
        fig_key = ("chart", repr(chart), query.unstable_below, rows_key, events.key)
        fig = reused(
            fig_key,
            lambda: events.draw(charts.figure(chart, df, query.unstable_below, reasons=why, count_columns=counts)),
        )
        legend = reused(
            ("legend", repr(query.suppress), repr(chart), rows_key),
            lambda: hidden.legend_line(why, query.suppress, charts.columns(chart)),
        )
        words = None
        if fig is not None:
            words = reused(("alt", *fig_key), lambda: alt_text.summary(chart, df, self.title(kept.grain)))
        return Built(kept, chart, note, fig, legend, words, rows_key, fig_key)

    def _draw(self, result, values: dict, since: str) -> Chart | None:
        query, spec = self.query, self.query.panel
        built = self.built(result(), queries.run_key(query.name, values), chart_notes.events())
        kept, chart, note, fig, legend, words = built[:6]
        df, mask, why = kept[:3]
        merged = [n for n in kept.notes if n.startswith(categories.OTHER)]  # said under the chart
        for said in kept.notes:  # on the chart: "Quarterly: too few discharges per month to show months"
            if said not in merged:
                st.caption(said)
        if df.empty:
            st.info(spec.get("empty") or "No data match these filters.")
            return None
        rows = built.rows_key
        if note:
            st.caption(note)
        footnote = "\n\n".join(
            x
            for x in (
                legend,
                *merged,
                spec.get("footnote"),
                charts.BUILDERS[chart["kind"]].note,
                getattr(charts.benchmark(chart), "source", None),
            )
            if x
        )
        drawn = None
        if fig is None:
            st.info(ALL_HIDDEN)
        else:
            plot(fig, f"chart-{self.key}", words)
            st.caption(words)
            marks = chart_notes.under(fig)
            shown = (n for n in kept.notes if n not in merged)
            said = "\n".join(x for x in (since, *shown, note, marks, footnote) if x)
            drawn = Chart(self.title(kept.grain), fig, said, repr(built.fig_key))
        if footnote:
            st.caption(footnote)
        with st.container(horizontal=True, vertical_alignment="top"):
            with (box := table_expander(self.key)):
                if box.open:
                    table = reused(
                        ("table", query.path, repr(query.suppress), rows), lambda: format_table(df, mask, query, why)
                    )
                    st.table(
                        labels.readable(table, labels.category_columns(df)),
                        hide_index=True,
                        alt=f"{self.title(kept.grain)}: the chart's values",
                    )
            download(
                "CSV",
                lambda: files.export_csv(df, why),
                export_info.file_name(self.key, "csv"),
                "text/csv",
                key=f"csv-{self.key}",
                query=query.name,
                params=values,
                rows=len(df),
            )
        return drawn


def n_note(
    query: Query,
    df: pd.DataFrame,
    mask: pd.DataFrame,
    n_col: str | None,
    n_at: dict | None = None,
    why: pd.DataFrame | None = None,
) -> str:
    """ "n = 1,234 eligible discharges (plus 2 hidden cells) · 3 points with n under 30: unstable"; "of 1–10"
    only when every hidden cell of the n is a small one (a cell hidden to protect another may be larger)."""
    if not n_col or n_col not in df:
        return ""
    rows, hidden_rows = df, mask
    if n_at:
        keep = pd.Series(True, index=df.index)
        for col, value in n_at.items():
            keep &= df[col] == value
        rows, hidden_rows = df[keep], mask[keep]
    hidden = int(hidden_rows[n_col].sum()) if n_col in hidden_rows else 0
    small = hidden
    if why is not None and n_col in why:
        small = int((why.loc[hidden_rows.index, n_col] == SMALL).sum())
    total = int(pd.to_numeric(rows[n_col], errors="coerce").sum())
    words = label(n_col).lower()
    if words.split()[-1].isdigit():  # discharges_30: discharges with a complete 30-day window
        words = f"{' '.join(words.split()[:-1])} ({words.split()[-1]}-day window)"
    note = f"n = {total:,} {words}" + (" at the start" if n_at else "")
    if hidden:
        note += f" (plus {hidden} hidden {'cell' if hidden == 1 else 'cells'}{' of 1–10' if small == hidden else ''})"
    if query.suppress.get("rates") or query.suppress.get("stats"):
        if n_at:
            note += f" · dotted where fewer than {query.unstable_below} remain: unstable"
        else:
            unstable = unstable_count(df, n_col, query.unstable_below)
            if unstable:
                note += (
                    f" · {unstable} {'value' if unstable == 1 else 'values'} with n under "
                    f"{query.unstable_below}: unstable (hollow, hatched or in brackets)"
                )
    return note


def _recent(params: dict, months: int | None, weeks: int | None) -> tuple[dict, str]:
    # a long history makes some charts unreadable: without sidebar dates they show the recent part only
    run = context.current()
    if not (months or weeks) or run.filters.get("start") or run.filters.get("end"):
        return params, ""
    through = info(run.version)["data_through"]
    if months:
        start = kpis.add_months(through.replace(day=1), -(months - 1))
        span = f"the last {months} months"
    else:
        start = through - dt.timedelta(days=through.weekday()) - dt.timedelta(weeks=weeks - 1)
        span = f"the last {weeks} weeks"
    return params | {"start": start}, (
        f"Showing {span} (from {start:%-d %b %Y}); set From and To in the sidebar for another range."
    )
