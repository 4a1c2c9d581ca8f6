"""Streamlit glue: the only module that imports streamlit. Pages call these and nothing else."""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from . import charts, db, filters, output, runner
from . import suppress as sup
from .catalog import Query, load_catalog

DEMO_CLIENTS = 3000


def db_path() -> Path:
    """The database this server shows: $OUTCOMES_DB, else data/outcomes.duckdb (read per call, not at import)."""
    return Path(os.environ.get("OUTCOMES_DB") or db.DEFAULT_DB)


@st.cache_resource(show_spinner=False)
def catalog() -> dict[str, Query]:
    return load_catalog()


@st.cache_resource(max_entries=2, show_spinner=False)
def _connection(version: db.DataVersion):
    # One read-only root connection per published file; queries use a fresh cursor each.
    return db.connect(version.path)


def _build_demo(path: Path) -> None:
    from .demo import generate
    from .loader import load

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several first visitors: one builds, the others wait
        if path.exists():
            return
        with st.status("First start: building the demo database…", expanded=True) as status:
            bar = st.progress(0.0)
            folder = path.parent / "demo"
            generate(folder, clients=DEMO_CLIENTS, seed=42,
                     progress=lambda f, m: bar.progress(min(f, 1.0) * 0.5, text=f"generating: {m}"))
            load(folder, path, progress=lambda f, m: bar.progress(0.5 + min(f, 1.0) * 0.5, text=f"loading: {m}"))
            status.update(label="Demo database ready", state="complete", expanded=False)


def data_version() -> db.DataVersion:
    """The published database's version; builds the demo on a fresh clone, or stops the page with a message."""
    path = db_path()
    if not path.exists() and path == db.DEFAULT_DB:
        _build_demo(path)
    try:
        return db.DataVersion.of(path)
    except db.NoDatabase:
        st.error(f"No database is loaded at `{path}`. Load one with `python -m outcomes load FOLDER`.")
        st.stop()


def connection():
    return _connection(data_version())


@st.cache_data(max_entries=1024, show_spinner=False)
def _run(name: str, items: tuple, version: db.DataVersion) -> tuple[pd.DataFrame, pd.DataFrame]:
    # Keyed on the data version and every parameter; holds suppressed data only.
    result = runner.run(_connection(version), catalog()[name], dict(items))
    return result.data, result.mask


def _key(params: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


def run(name: str, params: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(suppressed table, mask of hidden cells) for a catalog query, with the global filters it declares."""
    query = catalog()[name]
    given = {k: v for k, v in active_filters().items() if k in query.params and v is not None}
    given |= {k: v for k, v in (params or {}).items() if v is not None}
    return _run(name, _key(given), data_version())


@st.cache_data(show_spinner=False)
def _options(version: db.DataVersion) -> dict[str, list[str]]:
    cur = _connection(version).cursor()
    try:
        rows = cur.execute("select filter, value from filter_options order by filter, value").fetchall()
    finally:
        cur.close()
    out: dict[str, list[str]] = {}
    for f, v in rows:
        out.setdefault(f, []).append(v)
    return out


@st.cache_data(show_spinner=False)
def info(version: db.DataVersion) -> dict:
    cur = _connection(version)
    return db.load_info(cur)


def sidebar_filters() -> dict:
    """Render the global filters in the sidebar, bound to the URL; store and return their values."""
    version = data_version()
    opts = _options(version)
    facts = info(version)
    with st.sidebar:
        st.caption(f"Data through **{facts['data_through']:%d %b %Y}**")
        values: dict = {}
        c1, c2 = st.columns(2)
        values["start"] = c1.date_input("From", value=None, key="start", bind="query-params", format="YYYY-MM-DD")
        values["end"] = c2.date_input("To", value=None, key="end", bind="query-params", format="YYYY-MM-DD")
        values["sites"] = st.multiselect("Sites", opts.get("site", []), key="sites", bind="query-params", placeholder="All sites")
        with st.expander("Client group", expanded=False):
            for name in ("payers", "genders", "age_bands", "substances", "living", "employment", "tracks"):
                p = filters.GLOBAL[name]
                values[name] = st.multiselect(p.label, opts.get(p.options, []), key=name, bind="query-params", placeholder="All")
            co = st.selectbox("Co-occurring mental health", ["any", "yes", "no"], key="co_occurring", bind="query-params")
            values["co_occurring"] = {"yes": True, "no": False}.get(co)
    values = {k: (v or None) if isinstance(v, list) else v for k, v in values.items()}
    st.session_state["_filters"] = values
    return values


def active_filters() -> dict:
    return st.session_state.get("_filters", {})


def filters_text() -> str:
    """The active filters in words, for captions and exported images."""
    parts = []
    for k, v in active_filters().items():
        if v is None:
            continue
        label = filters.GLOBAL[k].label
        parts.append(f"{label}: {', '.join(v) if isinstance(v, list) else ('yes' if v is True else 'no' if v is False else v)}")
    return "; ".join(parts) or "No filters (all data)"


def first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".") + "."


def header(query: Query, title: str | None = None) -> None:
    """Title, a one-line definition and the full definition in a popover."""
    top = st.columns([5, 1])
    top[0].subheader(title or query.title)
    with top[1].popover("Definition"):
        st.markdown(f"**{query.title}**\n\n{query.description}")
        if query.definition:
            st.markdown(query.definition.replace("\n", "  \n"))
        st.caption(f"Query: `queries/{query.path.name}`")
    st.caption(first_sentence(query.description))


def section(name: str, params: dict | None = None, title: str | None = None, empty: str | None = None,
            p_chart: tuple[str, str] | None = None, benchmark: tuple | None = None,
            key: str | None = None) -> pd.DataFrame | None:
    """One question on a page: header, chart, n, table and CSV download, from suppressed data only."""
    query = catalog()[name]
    header(query, title)
    df, mask = run(name, params)
    if df.empty:
        st.info(empty or "No data match these filters.")
        return None
    n_col = query.chart.get("n")
    if n_col and n_col in df:
        small = int(mask[n_col].sum()) if n_col in mask else 0
        total = pd.to_numeric(df[n_col], errors="coerce").sum()
        note = f"n = {int(total):,}" + (f" (plus {small} suppressed cells)" if small else "")
        unstable = (pd.to_numeric(df[n_col], errors="coerce") < query.unstable_below).sum()
        if unstable:
            note += f" · {unstable} row(s) with n under {query.unstable_below}: rates unstable"
        st.caption(note)
    if p_chart:
        fig = charts.rate_p_chart(df, query.chart["x"], *p_chart, benchmark=benchmark)
    else:
        fig = charts.figure(query, df)
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key=f"chart-{key or name}")
    elif query.chart.get("kind") not in (None, "table"):
        st.info("Every value here is a small cell (1–10) and is hidden; widen the filters or the date range.")
    with st.expander("Table"):
        st.dataframe(format_table(df, mask, query), hide_index=True, width="stretch")
    st.download_button("Download CSV", output.to_csv(df), file_name=f"{name}.csv", mime="text/csv",
                       key=f"csv-{key or name}")
    return df


def format_table(df: pd.DataFrame, mask: pd.DataFrame, query: Query) -> pd.DataFrame:
    """Display strings: percentages, thousands separators, "<11" for hidden counts."""
    shown = output.plain_dates(df)
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = shown[col]
        if charts.is_rate(col) and pd.api.types.is_numeric_dtype(df[col]):
            out[col] = s.map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
        elif pd.api.types.is_integer_dtype(df[col]) or str(df[col].dtype) == "Int64":
            out[col] = s.map(lambda v: "" if pd.isna(v) else f"{int(v):,}")
        elif pd.api.types.is_float_dtype(df[col]):
            out[col] = s.map(lambda v: "" if pd.isna(v) else f"{v:,.1f}")
        else:
            out[col] = s.astype(object).where(s.notna(), "")
    return sup.for_screen(out, mask, query.suppress).fillna("")


def page(title: str) -> None:
    """Start a page. On a server's very first request Streamlit may run a deep-linked page without app.py
    (its legacy pages/ mode, chosen once per process); rerun once so navigation and filters apply."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    st.title(title)


def today() -> dt.date:
    return dt.date.today()
