"""Explore: every catalog query with typed widgets bound to the address, its result, chart and downloads."""

from __future__ import annotations

import duckdb
import pandas as pd
import streamlit as st

from outcomes.catalog import filters, runner
from outcomes.catalog.query import AREAS, Query
from outcomes.present import charts, labels
from outcomes.present import hidden as hidden_words
from outcomes.present.tables import format_table
from outcomes.web import context, queries
from outcomes.web.casemix import MODEL_PANELS
from outcomes.web.casemix import explore as model_view
from outcomes.web.context import catalog
from outcomes.web.database import catalog_problems, info, options
from outcomes.web.downloads import exports
from outcomes.web.panels import ALL_HIDDEN, heading, keep_rows
from outcomes.web.plotted import plot
from outcomes.web.queries import given, run

EXPLORE_COLUMNS = 3


def pick() -> Query | None:
    """The catalog, grouped by area, in one selectbox bound to the URL as `?q=NAME`; None until one is chosen.
    Files in queries/ that do not parse are named above it."""
    for problem in catalog_problems():
        st.warning(f"Left out of the catalog until fixed: {problem}", icon=":material/error:")
    cat = catalog()
    names = sorted(cat, key=lambda n: (cat[n].area, cat[n].title.lower()))
    name = st.selectbox("Query", names, index=None, key="q", bind="query-params", placeholder="Choose a query")
    return cat.get(name) if name else None


def index() -> None:
    """Every query by area: a button that opens it here (the address then names it), its name and what it shows."""
    cat = catalog()
    areas = [a for a in AREAS if any(q.area == a for q in cat.values())]
    cols = st.columns(min(len(areas), 3) or 1)
    filled = [0] * len(cols)
    for area in areas:
        queries = sorted((q for q in cat.values() if q.area == area), key=lambda q: q.title.lower())
        k = filled.index(min(filled))  # the shortest column so far
        filled[k] += len(queries) + 1
        with cols[k]:
            st.markdown(f"**{labels.value(area)}**")
            for q in queries:
                st.button(
                    q.title,
                    key=f"open-{q.name}",
                    type="tertiary",
                    on_click=_open_query,
                    args=(q.name,),
                    help=f"`{q.name}`: {q.lead}",
                )


def _open_query(name: str) -> None:
    st.session_state["q"] = name  # the selectbox is bound to the URL, so the address names the query too


def _default(p, data_through):
    return data_through if p.default == "data_through" else p.default


def params(query: Query) -> dict:
    """One typed widget per parameter, bound to the URL as NAME.PARAM; the global filters come from the sidebar.

    Returns the chosen values, empty ones (no date, empty text, empty list, "any") left out so defaults apply."""
    own = [p for p in query.params.values() if not p.filter]
    if query.sidebar:
        st.caption("From the sidebar: " + ", ".join(filters.GLOBAL[n].label for n in query.sidebar))
    if not own:
        return {}
    version = context.current().version
    opts = options(version)
    through = info(version)["data_through"]
    values: dict = {}
    cols = st.columns(EXPLORE_COLUMNS)
    for i, p in enumerate(own):
        key = f"{query.name}.{p.name}"
        default = _default(p, through)
        with cols[i % EXPLORE_COLUMNS]:
            if p.type == "date":
                v = st.date_input(p.label, value=default, key=key, bind="query-params", format="YYYY-MM-DD")
            elif p.type == "int":
                v = st.number_input(p.label, value=default, step=1, key=key, bind="query-params")
            elif p.type == "float":
                v = st.number_input(
                    p.label, value=None if default is None else float(default), step=0.1, key=key, bind="query-params"
                )
            elif p.type == "choice":
                choices = [str(c) for c in p.choices]
                v = st.selectbox(
                    p.label,
                    choices,
                    index=choices.index(str(default)) if default in choices else None,
                    key=key,
                    bind="query-params",
                )
            elif p.type == "bool":
                shown = st.selectbox(
                    p.label,
                    ["any", "yes", "no"],
                    index={True: 1, False: 2}.get(default, 0),
                    key=key,
                    bind="query-params",
                )
                v = {"yes": True, "no": False}.get(shown)
            elif p.type == "dates":
                v = st.text_input(
                    p.label,
                    value=", ".join(d.isoformat() for d in default or []),
                    key=key,
                    bind="query-params",
                    placeholder="YYYY-MM-DD, YYYY-MM-DD, ...",
                )
            elif p.type == "list":
                choices = opts.get(p.options, []) if p.options else list(default or [])
                v = st.multiselect(
                    p.label,
                    choices,
                    default=[d for d in default or [] if d in choices],
                    key=key,
                    bind="query-params",
                    accept_new_options=not p.options,
                    placeholder="All",
                )
            else:
                v = st.text_input(p.label, value=default or "", key=key, bind="query-params")
        if v is not None and v != "" and v != []:
            values[p.name] = v
    return values


def show(query: Query, chosen: dict) -> pd.DataFrame | None:
    """A chosen query: definition, SQL, suppressed result table, its chart and CSV, Excel and Parquet downloads."""
    heading(query)
    with st.expander("Exact rules and SQL"):
        if query.definition:
            st.markdown(query.definition.replace("\n", "  \n"))
        st.code(query.sql.strip(), language="sql")
        st.caption(
            f"`queries/{query.path.name}` · run it at the command line with `python -m outcomes query {query.name}`"
        )
    values = given(query.name, chosen)
    if query.model in MODEL_PANELS:  # its fit and the tables beside its result are shown too
        return model_view(query, values)
    try:
        rows = run(query.name, values)
        df, mask, why = rows
    except (ValueError, PermissionError, runner.QueryTimeout, duckdb.Error) as exc:
        st.error(str(exc).splitlines()[0])
        return None
    if df.empty:
        st.info("No rows for these parameters and filters.")
        return df
    for note in rows.notes:  # a grain `auto` chose, categories merged into Other
        st.caption(note)
    defaults = {n: p.default for n, p in query.params.items()}
    chart = charts.spec(query.chart, defaults | chosen | (query.panel.get("vars") or {}))
    rows = keep_rows(queries.Rows(df, mask, why), query.panel.get("rows"))
    fig = charts.figure(
        chart,
        rows.data,
        threshold=query.unstable_below,
        reasons=rows.reasons,
        count_columns=query.suppress.get("counts", []),
    )
    if fig is not None:
        plot(fig, f"explore-chart-{query.name}")
    elif query.chart.get("kind") not in (None, "table"):
        st.info(ALL_HIDDEN)
    st.dataframe(format_table(df, mask, query, why), hide_index=True, width="stretch")
    hidden = int(mask.to_numpy().sum())
    legend = hidden_words.legend_line(why, query.suppress)
    st.caption(
        f"{len(df):,} rows"
        + (f" · {hidden} {'cell' if hidden == 1 else 'cells'} hidden ({legend})" if hidden else "")
        + " · the page address reproduces this view"
    )
    exports(df, query.name, reasons=why, title=query.title, query=query.name, params=values)
    return df
