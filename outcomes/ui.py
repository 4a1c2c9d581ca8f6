"""Streamlit glue: the only module that imports streamlit. Pages call these and nothing else."""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import threading
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from . import access, audit, charts, db, filters, output, runner
from . import suppress as sup
from .catalog import Query, load_catalog

DEMO_CLIENTS = 3000
MIN_CLIENTS = 11  # a filtered view must hold at least this many distinct clients to show anything
POPULATION = "population"  # the catalog query that counts them


def db_path() -> Path:
    """The database this server shows: $OUTCOMES_DB, else data/outcomes.duckdb (read per call, not at import)."""
    return Path(os.environ.get("OUTCOMES_DB") or db.DEFAULT_DB)


@st.cache_resource(show_spinner=False)
def catalog() -> dict[str, Query]:
    return load_catalog()


@st.cache_resource(max_entries=2, show_spinner=False, on_release=lambda con: con.close())
def _connection(version: db.DataVersion):
    # One read-only root connection per published file; queries use a fresh cursor each.
    return db.open_version(version)


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


def run_version() -> db.DataVersion:
    """The data version this script run started with (pinned by sidebar_filters), so a reload during a run
    cannot mix two versions on one page; the current version when nothing is pinned."""
    return st.session_state.get("_data_version") or data_version()


def connection():
    return _connection(run_version())


@st.cache_data(max_entries=1024, show_spinner=False)
def _run(name: str, items: tuple, version: db.DataVersion, scope: tuple | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    # Keyed on the data version, every parameter and the user's site scope; holds suppressed data only.
    result = runner.run(_connection(version), catalog()[name], dict(items), scope=scope)
    return result.data, result.mask


def _key(params: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items()))


def run(name: str, params: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(suppressed table, mask of hidden cells) for a catalog query, with the global filters it declares.
    Stops the page when the filters select fewer than MIN_CLIENTS clients."""
    if name != POPULATION:
        require_population()
    return _run_pinned(name, params)


def started(name: str, params: dict | None = None):
    """run(name, params) started on a thread of its own; returns a function that waits for it and gives its
    result. DuckDB runs a query without holding the GIL, so queries started together overlap each other and the
    drawing of the page. The thread only calls the cached `_run`, with every argument worked out here."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import add_script_run_ctx

    if name != POPULATION:
        require_population()
    args = (name, _key(given_params(name, params)), run_version(), current_user().scope)
    out: list = []

    def work() -> None:
        try:
            out.append(_run(*args))
        except BaseException as exc:  # raised again on the script's own thread, by result()
            out.append(exc)

    thread = add_script_run_ctx(threading.Thread(target=work, daemon=True))
    thread.start()

    def result() -> tuple[pd.DataFrame, pd.DataFrame]:
        thread.join()
        if isinstance(out[0], (db.VersionGone, duckdb.ConnectionException)):
            _start_over()
        if isinstance(out[0], BaseException):
            raise out[0]
        return out[0]

    return result


def run_many(calls: list[tuple[str, dict | None]]) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """run() for several catalog queries at once (see started)."""
    return [result() for result in [started(name, params) for name, params in calls]]


def _run_pinned(name: str, params: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        return _run(name, _key(given_params(name, params)), run_version(), current_user().scope)
    except (db.VersionGone, duckdb.ConnectionException):
        _start_over()


def _start_over() -> None:
    # A reload replaced the pinned file mid-run (or two reloads closed its cached connection): start over on the
    # version now published.
    st.session_state.pop("_data_version", None)
    st.rerun()


def clients_in_view() -> int | None:
    """Distinct clients the active filters select (None when 1-10, which suppression hides)."""
    df, _ = _run_pinned(POPULATION, None)
    n = df["clients"].iloc[0] if len(df) else 0
    return None if pd.isna(n) else int(n)


def require_population() -> None:
    """The minimum population: no results at all for a view of fewer than MIN_CLIENTS clients. A view that
    passed (the same data version, population filters and site scope) is not counted again."""
    view = (run_version(), _key(given_params(POPULATION)), current_user().scope)
    if st.session_state.get("_population_ok") == view:
        return
    n = clients_in_view()
    if n is None or n < MIN_CLIENTS:
        st.info(f"Too few clients to show: these filters select fewer than {MIN_CLIENTS} clients. "
                "Widen the filters to see results.")
        st.stop()
    st.session_state["_population_ok"] = view


def given_params(name: str, params: dict | None = None) -> dict:
    """The values a catalog query receives: the global filters it declares, then `params`; None left out."""
    query = catalog()[name]
    given = {k: v for k, v in active_filters().items() if k in query.params and v is not None}
    return given | {k: v for k, v in (params or {}).items() if v is not None}


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
    user = current_user()
    st.session_state.pop("_data_version", None)
    if not user.authorised:
        return {}
    version = st.session_state["_data_version"] = data_version()  # one data version for the whole run
    opts = _options(version)
    facts = info(version)
    with st.sidebar:
        st.caption(f"Data through **{facts['data_through']:%d %b %Y}**")
        values: dict = {}
        c1, c2 = st.columns(2)
        values["start"] = c1.date_input("From", value=None, key="start", bind="query-params", format="YYYY-MM-DD")
        values["end"] = c2.date_input("To", value=None, key="end", bind="query-params", format="YYYY-MM-DD")
        sites = [s for s in opts.get("site", []) if user.scope is None or s in user.scope]
        values["sites"] = st.multiselect("Sites", sites, key="sites", bind="query-params", placeholder="All sites")
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
    require_population()
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
    download("Download CSV", lambda: output.to_csv(df), f"{name}.csv", "text/csv", key=f"csv-{key or name}",
             query=name, params=given_params(name, params), rows=len(df))
    return df


# Figures and display tables already built, by everything they are built from (process-wide, least recently
# used dropped first): a rerun that shows the same rows the same way reuses them. Building the Plotly figures
# is most of a page's time once its queries are cached. Held as a cache resource, so clearing Streamlit's
# caches clears it too.
_BUILT_MAX = 256
_KEYABLE = (int, float, str, bool, type(None), dt.date)


@st.cache_resource(show_spinner=False)
def _built_store() -> tuple[dict, threading.Lock]:
    return {}, threading.Lock()  # sessions run in threads of their own


def _built(key, make):
    """make(), or what it returned for the same key before; key None: make() every time."""
    if key is None:
        return make()
    store, lock = _built_store()
    with lock:
        value = store.pop(key, None)
    if value is None:
        value = make()
    with lock:
        store[key] = value
        while len(store) > _BUILT_MAX:
            store.pop(next(iter(store)))
    return value


def _run_key(name: str, params: dict | None) -> tuple:
    """What decides a catalog query's rows in this run: the arguments of its cached `_run`."""
    return name, _key(given_params(name, params)), run_version(), current_user().scope


def _chart_key(chart) -> tuple | None:
    """What a page's chart function draws besides its rows: its code, the values it closes over and the simple
    globals it names. None (draw it every time) when something else could change what it draws."""
    code = getattr(chart, "__code__", None)
    if code is None or "session_state" in code.co_names or any(hasattr(c, "co_code") for c in code.co_consts):
        return None
    values = [c.cell_contents for c in chart.__closure__ or ()]
    names = [(n, chart.__globals__[n]) for n in code.co_names if n in chart.__globals__]
    if any(callable(v) and getattr(v, "__module__", None) == chart.__module__ for _, v in names):
        return None  # a helper of the page itself may read anything
    names = [(n, v) for n, v in names if not (callable(v) or type(v).__name__ == "module")]
    try:
        key = (code, tuple(values), tuple(names))
        hash(key)
    except TypeError:
        return None
    return key if all(_keyable(v) for v in values + [v for _, v in names]) else None


def _keyable(value) -> bool:
    """A value that stands for what it holds: simple, or a tuple or frozen dataclass of such values."""
    import dataclasses

    if isinstance(value, (tuple, frozenset)):
        return all(_keyable(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.__dataclass_params__.frozen and all(
            _keyable(getattr(value, f.name)) for f in dataclasses.fields(value))
    return isinstance(value, _KEYABLE)


def format_table(df: pd.DataFrame, mask: pd.DataFrame, query: Query) -> pd.DataFrame:
    """Display strings: percentages, thousands separators, "<11" for hidden counts."""
    shown = output.plain_dates(df)
    columns = {}
    for col in df.columns:
        s = shown[col]
        text = None
        if charts.is_rate(col) and pd.api.types.is_numeric_dtype(df[col]):
            text = "{:.1%}".format
        elif pd.api.types.is_integer_dtype(df[col]) or str(df[col].dtype) == "Int64":
            text = lambda v: f"{int(v):,}"  # noqa: E731
        elif pd.api.types.is_float_dtype(df[col]):
            text = "{:,.1f}".format
        if text is None:
            columns[col] = s.astype(object).where(s.notna(), "")
        else:  # column by column in plain Python: a table is small, and pandas' per-call overhead is not
            columns[col] = pd.Series(["" if gone else text(v) for v, gone in zip(s.tolist(), s.isna().tolist())],
                                     index=df.index, dtype=object)
    out = pd.DataFrame(columns, index=df.index)
    return sup.for_screen(out, mask, query.suppress).fillna("")


def page(title: str) -> None:
    """Start a page. On a server's very first request Streamlit may run a deep-linked page without app.py
    (its legacy pages/ mode, chosen once per process); rerun once so navigation and filters apply."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory or _without_app():
        PagesManager.uses_pages_directory = False
        st.rerun()
    require("view")
    st.title(title)
    _log_view(title)


def _without_app() -> bool:
    """This run executed a page file through Streamlit's pages/ mode instead of app.py. The mode is one flag per
    process: when several first visitors deep-link at once, the first one's rerun clears the flag while the
    others are already running their page alone (no navigation, no sidebar filters)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return False
    manager = ctx.pages_manager
    if manager.current_page_script_hash in ("", manager.main_script_hash):
        return False  # the main script itself is running (app.py, or a page run on its own by a test)
    main = Path(ctx.main_script_path).resolve()
    return any(Path(str(info.get("script_path", ""))).resolve() == main for info in manager.get_pages().values())


def today() -> dt.date:
    return dt.date.today()


# Access and audit. The rules are in outcomes.access and outcomes.audit; this is their Streamlit side.

LOCAL_BANNER = "Local mode: no login configured. Single user, every site, every right; do not expose this server."


def _secret(name: str):
    """A top-level entry of .streamlit/secrets.toml, or None (also when there is no secrets file)."""
    return st.secrets.get(name) if st.secrets.load_if_toml_exists() else None


def login_configured() -> bool:
    """Whether secrets.toml has an [auth] section: login is then required and access is denied by default."""
    return bool(_secret("auth"))


def current_user() -> access.User:
    """Who is using this session: the local admin without login; else the signed-in user's role and sites."""
    if not login_configured():
        return access.LOCAL_USER
    claims = st.user.to_dict()
    if not claims.get("is_logged_in"):
        return access.ANONYMOUS
    try:
        grants = access.load_roles(access.roles_path(_secret("roles_file")))
    except access.RolesError as exc:
        logging.getLogger(__name__).error("%s", exc)  # details for the operator, not the viewer
        st.error("Access is misconfigured, so nothing can be shown. An administrator can see why in the server log.")
        st.stop()
    return access.resolve(claims, grants)


def visible_to(action: str) -> str:
    """A page's visibility in the menu: "visible" if the current user may `action`, else "hidden" (the page
    itself still refuses them)."""
    return "visible" if current_user().can(action) else "hidden"


def navigation(pages):
    """st.navigation for a user with a role. With login on, a signed-out user or one without a role gets a
    single page instead (sign in, or "not authorised") and nothing else. Call in place of st.navigation."""
    user = current_user()
    if not user.authorised:
        return st.navigation([st.Page(_no_access, title="Treatment outcomes", url_path="access", default=True)],
                             position="hidden")
    nav = st.navigation(pages)
    st.session_state["_page"] = nav.url_path or "/"  # the default page's url_path is ""
    if user.local:
        st.info(LOCAL_BANNER, icon=":material/lock_open:")
    else:
        st.sidebar.caption(f"Signed in as **{user.email}** · {user.role} · "
                           + ("all sites" if user.sites is None else ", ".join(user.sites)))
        if st.sidebar.button("Log out", key="_logout"):
            st.logout()
    return nav


def _no_access() -> None:
    user = current_user()
    st.title("Treatment outcomes")
    if not user.signed_in:
        auth = _secret("auth") or {}
        providers = [None] if "client_id" in auth else [k for k, v in auth.items() if hasattr(v, "keys")]
        st.write("Sign in to see the dashboard.")
        for provider in providers or [None]:
            if st.button(f"Sign in with {provider}" if provider else "Sign in", key=f"_login-{provider}"):
                st.login(provider)
        return
    st.error(f"Not authorised: {user.email or 'this account'} has no role in this dashboard. "
             "Ask an administrator to add you to the roles file.")
    _log_once("denied", reason="no role", action="view")
    if st.button("Log out", key="_logout"):
        st.logout()


def require(action: str) -> access.User:
    """The current user if they may do `action`; otherwise "not authorised" (logged) and the page stops."""
    user = current_user()
    if user.can(action):
        return user
    st.error("Not authorised: your role does not allow this."
             + ("" if user.authorised else " Sign in with an account that has a role."))
    _log_once("denied", reason=f"{user.role or 'no role'} may not {action}", action=action)
    st.stop()


def log_event(kind: str, **details) -> None:
    """Append an audit event for the current user and page. With login on, a log that cannot be written stops
    the page (fail closed); in local mode it only warns."""
    user = current_user()
    details = {"page": st.session_state.get("_page")} | details | _who(user)
    try:
        audit.write(kind, user.label, path=audit.log_path(_secret("audit_log")), **details)
    except audit.AuditError as exc:
        logging.getLogger(__name__).error("audit: %s", exc)
        if user.local:
            st.warning("The audit log could not be written (see the server log).")
            return
        st.error("The audit log cannot be written, so nothing more is shown. Tell an administrator.")
        st.stop()


def _who(user: access.User) -> dict:
    return {"role": user.role, "sites": "*" if user.scope is None else list(user.scope)}


def _log_once(kind: str, **details) -> None:
    # Reruns (every widget change) repeat a page; log a denial once per session, page and reason.
    key = (kind, st.session_state.get("_page"), tuple(sorted(map(str, details.items()))))
    seen = st.session_state.setdefault("_audited", set())
    if key not in seen:
        seen.add(key)
        log_event(kind, **details)


def _log_view(title: str) -> None:
    # A page view is logged when the page or the global filters change, not on every rerun.
    page = st.session_state.get("_page") or title
    filters_now = {k: v for k, v in active_filters().items() if v is not None}
    key = (page, _key(filters_now))
    if st.session_state.get("_viewed") != key:
        st.session_state["_viewed"] = key
        log_event("page_view", page=page, params=filters_now, title=title)


def log_adhoc(sql: str, outcome: str, rows: int | None = None, seconds: float | None = None,
              error: str | None = None) -> None:
    """Record one ad-hoc SQL run: its text and outcome ("ok", "refused", "error", "timeout"), never its rows.

    Of a database error only the kind is kept ("Conversion Error", ...): its message can quote a value."""
    if outcome == "error" and error:
        error = error.split(":", 1)[0].strip()[:80]
    log_event("adhoc_sql", sql=sql, outcome=outcome, rows=rows, seconds=None if seconds is None else round(seconds, 3),
              error=error)


def download(label: str, data, file_name: str, mime: str, *, key: str, query: str | None = None,
             params: dict | None = None, rows: int | None = None, raw: bool = False) -> None:
    """A download button whose file is made only when clicked, and logged as an export when it is made.

    `data` is a callable returning the file's contents. Raw (unsuppressed) exports need the "raw" permission.
    """
    user = require("raw" if raw else "export")
    details = dict(page=st.session_state.get("_page"), query=query, params=params, rows=rows, file=file_name,
                   raw=raw) | _who(user)
    audit.event("export", user.label, **details)  # a parameter that cannot be logged fails now, not on click
    path = audit.log_path(_secret("audit_log"))

    def make():
        # Runs on a server thread when the browser asks for the file: log first, so no export goes unlogged.
        audit.write("export", user.label, path, **details)
        return data()

    st.download_button(label, make, file_name=file_name, mime=mime, key=key, on_click="ignore")


def upload_limit_mb() -> int:
    """The upload limit in MB: server.maxUploadSize from .streamlit/config.toml."""
    return int(st.get_option("server.maxUploadSize"))


def publish_uploads(files: list, as_of: dt.date | None = None) -> bool:
    """Validate uploaded extracts with progress and publish them when valid; show the report when not."""
    import tempfile

    from . import uploads
    from .loader import LoadError, load

    require("manage_data")
    names = sorted(f.name for f in files)[: audit.MAX_ITEMS]
    problems = uploads.check([(f.name, f.size) for f in files], upload_limit_mb())
    result = None
    if not problems:
        with tempfile.TemporaryDirectory(prefix="outcomes-upload-") as tmp, \
                st.status("Validating the extracts…", expanded=True) as status:
            bar = st.progress(0.0)
            uploads.save([(f.name, f) for f in files], Path(tmp))
            try:
                result = load(tmp, db_path(), as_of,
                              progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
            except LoadError as exc:
                problems = exc.problems
                status.update(label="Not published: the extracts break the data contract", state="error")
            except Exception as exc:
                log_event("data_load", params={"files": names, "as_of": as_of}, outcome="error",
                          error=type(exc).__name__)  # not the message: it could quote a value from the files
                raise
            else:
                status.update(label="Published" if result.changed else "No change", state="complete", expanded=False)
    log_event("data_load", params={"files": names, "as_of": as_of},
              outcome="published" if result and result.changed else "unchanged" if result else "refused",
              problems=len(problems), rows=sum(result.rows.values()) if result else None,
              tables=result.rows if result else None)
    if problems:
        st.error(f"Not published: {len(problems)} problem(s). The live data was not changed.")
        st.dataframe(pd.DataFrame([vars(p) for p in problems], columns=["file", "line", "column", "rule", "message"]),
                     hide_index=True, width="stretch")
        return False
    if not result.changed:
        st.info(f"No change: these files are already loaded (data through {result.data_through:%d %b %Y}).")
        return True
    _connection.clear()  # closes the connection to the replaced file, so every page serves the new version
    rows = ", ".join(f"{k} {v:,}" for k, v in result.rows.items())
    st.success(f"Published: {rows}; data through {result.data_through:%d %b %Y} ({result.seconds:.1f} s).")
    return True


# Explore: every catalog query with typed widgets bound to the URL, its result, chart and downloads; ad-hoc SQL.

EXPLORE_COLUMNS = 3


def explore_pick() -> Query | None:
    """The catalog, grouped by area, in one selectbox bound to the URL as `?q=NAME`; None until one is chosen."""
    cat = catalog()
    names = sorted(cat, key=lambda n: (cat[n].area, cat[n].title.lower()))
    name = st.selectbox("Query", names, index=None, key="q", bind="query-params", placeholder="Choose a query")
    return cat.get(name) if name else None


AREA_ORDER = ("overview", "stepdown", "engagement", "retention", "pathways")


def catalog_overview() -> None:
    """Every query by area: a button that opens it here (the address then names it), its name and what it shows."""
    cat = catalog()
    areas = sorted({q.area for q in cat.values()},
                   key=lambda a: (AREA_ORDER.index(a) if a in AREA_ORDER else len(AREA_ORDER), a == "other", a))
    cols = st.columns(min(len(areas), 3) or 1)
    filled = [0] * len(cols)
    for area in areas:
        queries = sorted((q for q in cat.values() if q.area == area), key=lambda q: q.title.lower())
        k = filled.index(min(filled))  # the shortest column so far
        filled[k] += len(queries) + 1
        with cols[k]:
            st.markdown(f"**{area.capitalize()}**")
            for q in queries:
                st.button(q.title, key=f"open-{q.name}", type="tertiary", on_click=_open_query, args=(q.name,),
                          help=f"`{q.name}`: {first_sentence(q.description)}")


def _open_query(name: str) -> None:
    st.session_state["q"] = name  # the selectbox is bound to the URL, so the address names the query too


def _default(p, data_through):
    return data_through if p.default == "data_through" else p.default


def explore_params(query: Query) -> dict:
    """One typed widget per parameter, bound to the URL as NAME.PARAM; the global filters come from the sidebar.

    Returns the chosen values, empty ones (no date, empty text, empty list, "any") left out so defaults apply."""
    own = [p for p in query.params.values() if p.name not in filters.GLOBAL]
    taken = [filters.GLOBAL[n].label for n in query.params if n in filters.GLOBAL]
    if taken:
        st.caption("From the sidebar: " + ", ".join(taken))
    if not own:
        return {}
    version = data_version()
    opts = _options(version)
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
                v = st.number_input(p.label, value=None if default is None else float(default), step=0.1,
                                    key=key, bind="query-params")
            elif p.type == "choice":
                choices = [str(c) for c in p.choices]
                v = st.selectbox(p.label, choices, index=choices.index(str(default)) if default in choices else None,
                                 key=key, bind="query-params")
            elif p.type == "bool":
                shown = st.selectbox(p.label, ["any", "yes", "no"], index={True: 1, False: 2}.get(default, 0),
                                     key=key, bind="query-params")
                v = {"yes": True, "no": False}.get(shown)
            elif p.type == "dates":
                v = st.text_input(p.label, value=", ".join(d.isoformat() for d in default or []), key=key,
                                  bind="query-params", placeholder="YYYY-MM-DD, YYYY-MM-DD, ...")
            elif p.type == "list":
                options = opts.get(p.options, []) if p.options else list(default or [])
                v = st.multiselect(p.label, options, default=[d for d in default or [] if d in options], key=key,
                                   bind="query-params", accept_new_options=not p.options, placeholder="All")
            else:
                v = st.text_input(p.label, value=default or "", key=key, bind="query-params")
        if v is not None and v != "" and v != []:
            values[p.name] = v
    return values


def explore_query(query: Query, params: dict) -> pd.DataFrame | None:
    """A chosen query: definition, SQL, suppressed result table, its chart and CSV, Excel and Parquet downloads."""
    import duckdb

    header(query)
    with st.expander("Definition and SQL"):
        if query.definition:
            st.markdown(query.definition.replace("\n", "  \n"))
        st.code(query.sql.strip(), language="sql")
        st.caption(f"`queries/{query.path.name}` · run it at the command line with "
                   f"`python -m outcomes query {query.name}`")
    try:
        df, mask = run(query.name, params)
    except (ValueError, PermissionError, runner.QueryTimeout, duckdb.Error) as exc:
        st.error(str(exc).splitlines()[0])
        return None
    if df.empty:
        st.info("No rows for these parameters and filters.")
        return df
    shown = [c for c in (query.chart.get("y"), query.chart.get("z"), query.chart.get("value")) if isinstance(c, str)]
    fig = None if any(c in df and df[c].isna().all() for c in shown) else charts.figure(query, df)
    if fig is not None:
        st.plotly_chart(fig, width="stretch", key=f"explore-chart-{query.name}")
    elif query.chart.get("kind") not in (None, "table"):
        st.info("Every value here is a small cell (1–10) and is hidden; widen the filters or the date range.")
    st.dataframe(format_table(df, mask, query), hide_index=True, width="stretch")
    hidden = int(mask.to_numpy().sum())
    st.caption(f"{len(df):,} rows" + (f" · {hidden} small cells hidden (counts of 1–10 and what they would reveal)"
                                      if hidden else "") + " · the page address reproduces this view")
    exports(df, query.name, query=query.name, params=given_params(query.name, params))
    return df


def exports(df: pd.DataFrame, stem: str, key: str | None = None, **log) -> None:
    """CSV, Excel and Parquet downloads of an already-suppressed table."""
    import functools

    cols = st.columns(4)
    files = (("CSV", output.to_csv, "csv", "text/csv"),
             ("Excel", output.to_excel, "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
             ("Parquet", output.to_parquet, "parquet", "application/vnd.apache.parquet"))
    for col, (label, write, ext, mime) in zip(cols, files):
        with col:
            download(f"Download {label}", functools.partial(write, df), f"{stem}.{ext}", mime,
                     key=f"{key or stem}-{ext}", rows=len(df), **log)


def adhoc_panel() -> None:
    """Ad-hoc SQL: one read-only statement, time limit and row cap, conservative suppression; save as a query."""
    import types

    import duckdb

    from . import adhoc, scaffold

    if not current_user().can("adhoc_sql"):
        st.info("Ad-hoc SQL needs the analyst or admin role with every site.")
        return
    st.caption(f"One read-only statement (select, with, from, values, describe, show, summarize) on the loaded "
               f"database; stopped after {adhoc.DEFAULT_TIMEOUT:g} s; the first {adhoc.DEFAULT_MAX_ROWS:,} rows are "
               "shown. Every whole-number column is treated as a count: 1–10 is hidden, and so are the other "
               "numbers on that row. See docs/adding-a-query.md.")
    with st.expander("Tables you can query"):
        st.dataframe(adhoc.tables(connection()), hide_index=True, width="stretch")
    sql = st.text_area("SQL (Ctrl+Enter runs it)", key="adhoc_sql", height=160,
                       placeholder="select site, level_of_care, count(*) as episodes\nfrom episodes\ngroup by all")
    if not (sql or "").strip():
        return
    ran = (sql, data_version())
    if st.session_state.get("_adhoc_ran") != ran:  # run once per statement and data version, not on every rerun
        st.session_state["_adhoc_ran"] = ran
        st.session_state["_adhoc"] = st.session_state["_adhoc_error"] = None
        try:
            result = adhoc.run(connection(), sql)
        except adhoc.Refused as exc:
            st.session_state["_adhoc_error"] = str(exc)[:1].upper() + str(exc)[1:]
            log_adhoc(sql, "refused", error=str(exc))
        except runner.QueryTimeout as exc:
            st.session_state["_adhoc_error"] = f"Stopped: {exc}"
            log_adhoc(sql, "timeout", error=str(exc))
        except (adhoc.QueryFailed, duckdb.Error) as exc:
            st.session_state["_adhoc_error"] = str(exc).splitlines()[0]
            log_adhoc(sql, "error", error=str(exc).splitlines()[0])
        else:
            log_adhoc(sql, "ok", rows=len(result.data), seconds=result.seconds)
            st.session_state["_adhoc"] = result  # suppressed data only
    if st.session_state.get("_adhoc_error"):
        st.error(st.session_state["_adhoc_error"])
    result = st.session_state.get("_adhoc")
    if result is None:
        return
    note = f"{len(result.data):,} rows in {result.seconds:.2f} s"
    if result.truncated:
        st.warning(f"Truncated: showing the first {len(result.data):,} rows. Aggregate, or add a where or limit.")
    hidden = int(result.mask.to_numpy().sum())
    st.caption(note + (f" · {hidden} small cells hidden" if hidden else ""))
    spec = types.SimpleNamespace(suppress={"counts": result.counts})
    st.dataframe(format_table(result.data, result.mask, spec), hide_index=True, width="stretch")
    exports(result.data, "adhoc", key="adhoc", query="adhoc")
    name = st.text_input("Save as query: name", value="new_query", key="adhoc_name",
                         help="lower_snake_case; the file goes into queries/ and `python -m outcomes check` says "
                              "what is left to fill in")
    numeric = [c for c in result.data.columns if c not in result.counts
               and pd.api.types.is_numeric_dtype(result.data[c]) and not pd.api.types.is_bool_dtype(result.data[c])]
    st.download_button("Save as query", scaffold.from_statement(result.sql, name or "new_query", result.counts, numeric),
                       file_name=f"{name or 'new_query'}.sql", mime="text/plain", key="adhoc-save", on_click="ignore")


# Director pages (Overview, Step-down, Engagement, Retention, Pathways): KPI tiles, chart panels built from
# suppressed data with n, unstable and benchmark notes, and the page as a PDF.

ALL_HIDDEN = "Every value here is a small cell (1–10) and is hidden; widen the filters or the date range."


def report_page(title: str) -> None:
    """Start a director page: the title, what data and filters it shows, and an empty list for its PDF."""
    page(title)
    st.session_state["_report"] = {"title": title, "charts": []}
    through = info(run_version())["data_through"]
    st.caption(f"Data through **{through:%d %b %Y}** · {filters_text()} · the page address keeps these filters")
    require_population()


def _report(title: str, fig, note: str = "", built: tuple | None = None) -> None:
    """Add a chart to the page PDF. `built` is the key the figure was built under (see _built), which stands for
    the figure in the PDF's stamp; without it the figure's JSON does."""
    from . import export

    report = st.session_state.setdefault("_report", {"title": "", "charts": []})
    report["charts"].append(export.Chart(title, fig, note))
    report.setdefault("stamps", []).append(title + (repr(built) if built else fig.to_json()))


def _lead(text: str) -> str:
    """The first sentence of a description (not fooled by "day 0. to" or "(1. to 5.)")."""
    import re

    return re.split(r"(?<=[a-z0-9)%])\.\s+(?=[A-Z])", text, maxsplit=1)[0].rstrip(".") + "."


def _heading(query: Query, title: str | None) -> None:
    """Title with the Definition popover beside it (fits half-width columns), then a one-line definition."""
    with st.container(horizontal=True, vertical_alignment="center", wrap=False):
        st.subheader(title or query.title, width="stretch")
        with st.popover("Definition"):
            st.markdown(f"**{query.title}**\n\n{query.description}")
            if query.definition:
                st.markdown(query.definition.replace("\n", "  \n"))
            st.caption(f"Query: `queries/{query.path.name}`")
    st.caption(_lead(query.description))


def _n_note(query: Query, df: pd.DataFrame, mask: pd.DataFrame, n_col: str | None = None,
            n_at: dict | None = None) -> str:
    """"n = 1,234 eligible discharges (plus 2 hidden cells of 1–10) · 3 points with n under 30: unstable"."""
    n_col = n_col or query.chart.get("n")
    if not n_col or n_col not in df:
        return ""
    rows, hidden_rows = df, mask
    if n_at:
        keep = pd.Series(True, index=df.index)
        for col, value in n_at.items():
            keep &= df[col] == value
        rows, hidden_rows = df[keep], mask[keep]
    hidden = int(hidden_rows[n_col].sum()) if n_col in hidden_rows else 0
    total = int(pd.to_numeric(rows[n_col], errors="coerce").sum())
    words = charts.label(n_col).lower()
    if words.split()[-1].isdigit():  # discharges_30: discharges with a complete 30-day window
        words = f"{' '.join(words.split()[:-1])} ({words.split()[-1]}-day window)"
    note = f"n = {total:,} {words}" + (" at the start" if n_at else "")
    if hidden:
        note += f" (plus {hidden} hidden {'cell' if hidden == 1 else 'cells'} of 1–10)"
    if query.suppress.get("rates") or query.suppress.get("stats"):
        if n_at:
            note += f" · dotted where fewer than {query.unstable_below} remain: unstable"
        else:
            unstable = charts.unstable_count(df, n_col, query.unstable_below)
            if unstable:
                note += (f" · {unstable} {'value' if unstable == 1 else 'values'} with n under "
                         f"{query.unstable_below}: unstable (hollow, hatched or in brackets)")
    return note


def _rows(df: pd.DataFrame, mask: pd.DataFrame, where: dict | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not where:
        return df, mask
    keep = pd.Series(True, index=df.index)
    for col, value in where.items():
        keep &= df[col].isin(value if isinstance(value, (list, tuple, set)) else [value])
    return df[keep].reset_index(drop=True), mask[keep].reset_index(drop=True)


def table_expander(key: str):
    """The "Table" expander under a chart. Its content runs only while it is open (opening it reruns the page),
    so a closed table costs a rerun nothing; session state `table-KEY` holds whether it is open."""
    return st.expander("Table", width="stretch", key=f"table-{key}", on_change="rerun")


def _table_and_csv(df: pd.DataFrame, mask: pd.DataFrame, query: Query, name: str, params: dict | None,
                   key: str, rows: tuple) -> None:
    with st.container(horizontal=True, vertical_alignment="top"):
        with (box := table_expander(key)):
            if box.open:
                table = _built(("table", query.path, repr(query.suppress), rows), lambda: format_table(df, mask, query))
                st.dataframe(table, hide_index=True, width="stretch")
        download("CSV", lambda: output.to_csv(df), f"{key}.csv", "text/csv", key=f"csv-{key}",
                 query=name, params=given_params(name, params), rows=len(df))


def _recent(params: dict, months: int | None, weeks: int | None) -> tuple[dict, str]:
    # a long history makes some charts unreadable: without sidebar dates they show the recent part only
    f = active_filters()
    if not (months or weeks) or f.get("start") or f.get("end"):
        return params, ""
    from . import kpis

    through = info(run_version())["data_through"]
    if months:
        start = kpis.add_months(through.replace(day=1), -(months - 1))
        span = f"the last {months} months"
    else:
        start = through - dt.timedelta(days=through.weekday()) - dt.timedelta(weeks=weeks - 1)
        span = f"the last {weeks} weeks"
    return params | {"start": start}, f"Showing {span} (from {start:%-d %b %Y}); set From and To in the sidebar for another range."


def panel(name: str, params: dict | None = None, *, title: str | None = None, empty: str | None = None,
          chart=None, where: dict | None = None, key: str | None = None, footnote: str | None = None,
          n: str | None = None, n_at: dict | None = None, recent_months: int | None = None,
          recent_weeks: int | None = None) -> None:
    """One chart on a director page: title, definition, n and unstable note, the chart, a table and its CSV.

    `chart` draws the (suppressed) rows, e.g. `lambda df: charts.rate_lines(df, ...)`; default: the chart the
    query header declares. `where` keeps rows whose columns hold the given values; `n_at` picks the rows whose
    n is the population (e.g. day 0 of a curve). Without sidebar dates, `recent_months`/`recent_weeks` limit
    the range. The chart, its notes and the footnote also go into the page PDF.

    The title is drawn at once and the query started on a thread of its own; the rest is drawn in its place
    once the page's queries are all started, by pdf_export() (which every director page ends with), so that
    the queries of a page run together.
    """
    query = catalog()[name]
    key = key or name
    _heading(query, title)
    params, since = _recent(dict(params or {}), recent_months, recent_weeks)
    if since:
        st.caption(since)
    holder = st.container()
    result = started(name, params)

    def draw() -> None:
        with holder:
            _panel_body(query, name, params, result, since, title=title, empty=empty, chart=chart, where=where,
                        key=key, footnote=footnote, n=n, n_at=n_at)

    st.session_state.setdefault("_report", {"title": "", "charts": []}).setdefault("pending", []).append(draw)


def _panel_body(query: Query, name: str, params: dict, result, since: str, *, title, empty, chart, where, key,
                footnote, n, n_at) -> None:
    df, mask = _rows(*result(), where)
    if df.empty:
        st.info(empty or "No data match these filters.")
        return
    rows = (_run_key(name, params), repr(where))  # the same run and the same `where` give the same rows
    note = _built(("note", query.path, repr(query.chart), repr(query.suppress), query.unstable_below, n, repr(n_at),
                   rows), lambda: _n_note(query, df, mask, n, n_at))
    if note:
        st.caption(note)
    how = _chart_key(chart) if chart else ("declared", query.path, repr(query.chart))
    built = how and ("chart", how, rows)
    fig = _built(built, lambda: chart(df) if chart else charts.figure(query, df))
    if fig is None:
        st.info(ALL_HIDDEN)
    else:
        st.plotly_chart(fig, width="stretch", key=f"chart-{key}", config={"displaylogo": False})
        _report(title or query.title, fig, "\n".join(x for x in (since, note, footnote) if x), built)
    if footnote:
        st.caption(footnote)
    _table_and_csv(df, mask, query, name, params, key, rows)


def draw_panels() -> None:
    """Draw the panels started on this page so far, in page order (each waits for its query)."""
    pending = (st.session_state.get("_report") or {}).get("pending") or []
    while pending:
        pending.pop(0)()


def benchmark_toggle(label: str, key: str) -> bool:
    """A switch for a benchmark line, on by default and kept in the page address."""
    return st.toggle(label, value=True, key=key, bind="query-params")


def overview_tiles() -> None:
    """The Overview: KPI tiles for the period against the one before, each with its trend, then the census."""
    from . import kpis

    through = info(run_version())["data_through"]
    f = active_filters()
    period, default = kpis.period_from(f.get("start"), f.get("end"), through)
    periods = kpis.periods_before(period, kpis.TREND_PERIODS)  # oldest first, ending with `period`
    before = periods[-2]
    why = ("the last 3 full months up to the data-through date; set From and To in the sidebar for another period"
           if default else "from the sidebar dates")
    with st.container(horizontal=True, vertical_alignment="center", wrap=False):
        st.markdown(f"**{period.label()}** ({why}), compared with **{before.label()}**, the period of equal "
                    f"length just before. Lines: the last {len(periods)} such periods.", width="stretch")
        with st.popover("Definitions"):
            for kpi in kpis.KPIS:
                st.markdown(f"**{kpi.label}.** {kpi.note} `queries/{kpi.query}.sql`")
            st.markdown("**Active clients.** Distinct clients with an episode at the level in the week holding the "
                        "period's last day. `queries/census.sql`")
    # every KPI over all the periods in one run each (grain=periods), and both censuses, at once
    *results, (now, _), (then, _) = run_many(
        [(kpi.query, kpi.periods_params(periods)) for kpi in kpis.KPIS]
        + [("census", kpis.census_params(period)), ("census", kpis.census_params(before, weeks=1))])
    tiles = []
    for col, kpi, (df, _) in zip(st.columns(len(kpis.KPIS)), kpis.KPIS, results):
        tile = kpis.tile(kpi, kpi.by_period(df, periods), periods, catalog()[kpi.query].unstable_below)
        _metric(col, tile)
        tiles.append(tile)
    st.subheader("Active clients by level of care")
    st.caption(f"Clients in care in the week of {period.end:%-d %b %Y}, against the week of {before.end:%-d %b %Y}; "
               f"lines: the {kpis.CENSUS_WEEKS} weeks up to it.")
    census = kpis.census_tiles(now, then, period, before)
    if not census:
        st.info("No episodes match these filters.")
    else:
        for col, tile in zip(st.columns(max(len(census), 5)), census):
            _metric(col, tile)
    summary = kpis.summary_rows(tiles + census)
    built = ("summary", summary.to_csv())  # ten short rows: cheaper to key on than to draw again
    _report(f"Key measures, {period.label()} against {before.label()}",
            _built(built, lambda: charts.table_figure(summary)),
            "Each value is the output of its catalog query for these dates and filters; counts of 1–10 are hidden.",
            built)
    with st.container(horizontal=True, vertical_alignment="top"):
        with (box := table_expander("overview")):
            if box.open:
                st.dataframe(summary, hide_index=True, width="stretch")
        download("CSV", lambda: output.to_csv(summary), "overview.csv", "text/csv", key="csv-overview",
                 query="overview", params={"start": period.start, "end": period.end}, rows=len(summary))


def _metric(col, tile) -> None:
    trend = [v for v in tile.trend if v is not None]
    col.metric(tile.label, tile.value, tile.delta, delta_color=tile.delta_color, help=tile.help, border=True,
               chart_data=trend if len(trend) >= 2 else None, chart_type="line")
    col.caption(tile.note)


def pdf_export() -> None:
    """In the sidebar: make this page's charts into a PDF on request (with the filters on every page). Draws the
    page's panels first."""
    import hashlib

    from . import export

    draw_panels()
    report = st.session_state.get("_report") or {}
    items = report.get("charts") or []
    stamp = hashlib.sha1("|".join([report.get("title", ""), filters_text(), str(run_version())]
                                  + report.get("stamps", [])).encode()).hexdigest()
    with st.sidebar:
        st.divider()
        st.caption("This page as a PDF: every chart, with the filters printed on each page.")
        if st.button("Prepare PDF", key="pdf-prepare", disabled=not items, icon=":material/picture_as_pdf:"):
            try:
                with st.spinner("Drawing the charts…"):
                    data = export.pdf(report["title"], items, filters_text(), info(run_version())["data_through"])
            except Exception:  # the drawing browser failed; the page itself is fine
                import logging

                logging.getLogger(__name__).exception("PDF export failed")
                st.warning("The PDF could not be drawn just now. Please try again.")
            else:
                st.session_state["_pdf"] = (stamp, data)
        ready = st.session_state.get("_pdf")
        if ready and ready[0] == stamp:
            pdf_bytes = ready[1]
            name = report["title"].lower().replace(" ", "-").replace("&", "and")
            download("Download page as PDF", lambda: pdf_bytes, f"{name}.pdf", "application/pdf", key="pdf-download",
                     params={k: v for k, v in active_filters().items() if v is not None}, rows=len(items))
