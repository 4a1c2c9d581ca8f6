"""What a director waits for in a real browser: a `streamlit run` server on loopback and Debian Chromium through
Playwright, timed from navigation or from a filter change to the last chart drawn.

A page is drawn when Streamlit has run its script since the action (the app's `data-test-script-state` went to
running and back to notRunning, or the server's WebSocket said a run finished), no element is stale, and the page title and every Plotly chart shown (not in
a closed expander or tab, each with its SVG) are drawn, or an exception is shown (reported as a problem). A page
that never is drawn fails with what it still lacked and the end of the server's log if the server has stopped.
Each round starts a new server: the first visit of each page is the first since that start (every server cache
empty), the second visit reuses them; a filter change picks sites not shown before in that round; a shared link
(the page address with filters not shown before) is opened in a fresh browser context (no browser cache). These
rounds run with nothing made ahead (`OUTCOMES_PREFETCH=0`); one more server life times changes of sites after
the page has been read for READ_SECONDS, as served by default (the other site choices made ahead).
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import time
from itertools import combinations, cycle
from pathlib import Path

from outcomes.bench.page_state import DRAWN, PENDING, RESET, watch
from outcomes.bench.server import Server, free_port
from outcomes.paths import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 900}
TIMEOUT_MS = 180_000


def pages() -> list[tuple[str, str, bool]]:
    """(url path, title, default) of every page in app.py's navigation, in its order."""
    text = (ROOT / "app.py").read_text()
    found = re.findall(r'st\.Page\(\s*"[^"]+",\s*title="([^"]+)",\s*url_path="([^"]+)"([^)]*)\)', text)
    return [(path, title, "default=True" in rest) for title, path, rest in found]


def _settle(page) -> float:
    """Wait until the page is drawn; the moment it was, as perf_counter seconds."""
    try:
        page.wait_for_function(DRAWN, polling="raf", timeout=TIMEOUT_MS)
    except Exception as exc:
        try:
            pending = page.evaluate(PENDING)
        except Exception:
            pending = "unknown"
        raise RuntimeError(f"page not drawn in {TIMEOUT_MS // 1000} s: {pending}") from exc
    return time.perf_counter()


def _problems(page) -> list[str]:
    found = page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]')
    return [found.nth(i).inner_text()[:200] for i in range(found.count())]


def visit(page, url: str) -> float:
    """Milliseconds from navigation to `url` to the last chart drawn."""
    t = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=TIMEOUT_MS)
    return (_settle(page) - t) * 1000


def change_sites(page, sites: list[str]) -> float:
    """Milliseconds from choosing the last of `sites` in the sidebar's Sites filter to the last chart drawn."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').filter(has_text="Sites").first
    for i, site in enumerate(sites):
        box.locator("input").click()
        page.keyboard.type(site)
        # Enter once the list shows the site: on a busy machine Enter on a list still filtering may pick
        # nothing, and then no run starts and nothing is ever drawn
        page.get_by_role("option", name=site, exact=True).first.wait_for(timeout=TIMEOUT_MS)
        # cleared before Enter: a run quick enough to end before a later clear would go unseen
        page.evaluate(RESET)
        t = time.perf_counter()
        page.keyboard.press("Enter")
        if i < len(sites) - 1:
            _settle(page)
    done = _settle(page)
    page.keyboard.press("Escape")
    return (done - t) * 1000


def prepare_pdf(page) -> float:
    """Milliseconds from pressing "Prepare PDF" in the sidebar to its download button being offered."""
    page.evaluate(RESET)
    t = time.perf_counter()
    page.get_by_role("button", name="Prepare PDF").click()
    page.get_by_role("button", name="Download page as PDF").wait_for(timeout=TIMEOUT_MS)
    done = _settle(page)
    return (done - t) * 1000


def _sites(db_path: Path) -> list[str]:
    from outcomes.ingest import db

    con = db.connect(db_path)
    try:
        return [
            r[0] for r in con.execute("select value from filter_options where filter = 'site' order by 1").fetchall()
        ]
    finally:
        con.close()


def _round(browser, server: Server, shown: list[tuple[str, str, bool]], choices: list[list[str]]) -> dict:
    """One server life: first and second visits, filter changes, shared links and the Step-down PDF."""
    out: dict = {"first": {}, "second": {}, "change": {}, "shared": {}, "problems": []}
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.add_init_script(watch())
    page = ctx.new_page()
    fresh = iter(choices)
    try:
        address = {path: f"{server.url}/{'' if default else path}" for path, _, default in shown}
        for kind in ("first", "second"):
            for path, _, _ in shown:
                out[kind][path] = visit(page, address[path])
                out["problems"] += _problems(page)
        for path, _, _ in shown:
            visit(page, address[path])
            if page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').count():
                out["change"][path] = change_sites(page, next(fresh))
                out["problems"] += _problems(page)
        if "stepdown" in address:
            visit(page, address["stepdown"])
            out["pdf_first"] = prepare_pdf(page)
            out["pdf_second"] = prepare_pdf(page)
    finally:
        ctx.close()
    for path, _, _ in shown:
        link = ctx2 = None
        try:
            ctx2 = browser.new_context(viewport=VIEWPORT)
            ctx2.add_init_script(watch())
            link = ctx2.new_page()
            query = "&".join(f"sites={s}" for s in next(fresh))
            out["shared"][path] = visit(link, f"{address[path]}?{query}")
            out["problems"] += _problems(link)
        finally:
            if ctx2 is not None:
                ctx2.close()
    return out


READ_SECONDS = 5  # a director reading the page before changing sites


def changes_ahead(
    browser,
    server: Server,
    shown,
    choices: list[list[str]],
    runs: int,
    read_seconds: float = READ_SECONDS,
    filtered: frozenset = frozenset(),
) -> dict:
    """One server life with the views made ahead (outcomes.web.prefetch): for each page with the Sites filter,
    `runs` times, visit it, read it for `read_seconds`, then change sites to a set not chosen before. Gives the
    milliseconds by page, and under "problems" the changes that failed, and the visits of a page in `filtered`
    (one whose sites the rounds changed) that showed no Sites filter."""
    out: dict = {"problems": []}
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.add_init_script(watch())
    page = ctx.new_page()
    fresh = cycle(choices)  # each page's changes go to sets its earlier changes did not
    try:
        for path, _, default in shown:
            for run in range(runs):
                try:
                    visit(page, f"{server.url}/{'' if default else path}")
                    sites = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').first
                    try:  # the page is drawn; its sidebar may still be on its way
                        sites.wait_for(timeout=5_000)
                    except Exception:
                        if path not in filtered:
                            break  # a page without the Sites filter
                        text = page.locator("body").inner_text()[:200].replace("\n", " | ")
                        out["problems"].append(f"{path} change {run + 1}: no Sites filter 5 s after drawn: {text}")
                        continue
                    page.wait_for_timeout(read_seconds * 1000)
                    out.setdefault(path, []).append(change_sites(page, next(fresh)))
                except Exception as exc:  # one change that timed out is a finding; the others still count
                    out["problems"].append(f"{path} change {run + 1}: {_first_line(exc)}")
    finally:
        ctx.close()
    return out


def first_start(browser, port: int) -> dict:
    """A fresh clone (the tracked files copied, no database): seconds from server start to the first page drawn,
    which includes building the demo database behind a progress bar."""
    folder = Path(tempfile.mkdtemp(prefix="outcomes-clone-"))
    try:
        files = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        for name in filter(None, files.decode().split("\0")):
            source = ROOT / name
            if source.is_file():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, folder / name)
        server = Server(port, None, folder)
        t = time.perf_counter()
        start = server.start()
        try:
            ctx = browser.new_context(viewport=VIEWPORT)
            ctx.add_init_script(watch())
            page = ctx.new_page()
            page.goto(server.url, wait_until="commit", timeout=TIMEOUT_MS)
            progress = page.locator('[data-testid="stProgress"]')
            try:
                progress.first.wait_for(timeout=60_000)
                shown = True
            except Exception:  # the demo was built before the bar could be seen
                shown = False
            _settle(page)
            seconds = time.perf_counter() - t
            ctx.close()
        finally:
            server.stop()
        return {"seconds": round(seconds, 1), "server_start_s": round(start, 2), "progress_shown": shown}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_browser(
    db_path: Path,
    runs: int,
    port: int | None = None,
    progress=print,
    clone: bool = True,
    read_seconds: float = READ_SECONDS,
) -> dict:
    """Medians over `runs` server starts of every page's times in Chromium, the Step-down PDF, and (with
    `clone`) the first start of a fresh clone."""
    from playwright.sync_api import sync_playwright

    port = port or free_port()
    shown = pages()
    sites = _sites(db_path)
    # every set of sites, one set per change and per link; more than a round needs when there are 3 or more sites
    choices = [list(c) for k in range(1, len(sites) + 1) for c in combinations(sites, k)]
    rounds, starts, failed = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for r in range(max(1, runs)):
                server = Server(port, db_path, env={"OUTCOMES_PREFETCH": "0"})  # nothing made ahead
                starts.append(server.start())
                try:
                    offset = (r * 5) % len(choices)
                    rounds.append(_round(browser, server, shown, (choices[offset:] + choices[:offset]) * 4))
                except Exception as exc:  # a round that timed out is a finding; the others still count
                    failed.append(f"round {r + 1}: {_first_line(exc)} {server.exited()}".strip())
                finally:
                    server.stop()
                progress(f"browser round {r + 1}/{runs}")
            server = Server(port, db_path, env={"OUTCOMES_PREFETCH": "1"})
            server.start()
            try:
                filtered = frozenset(path for r in rounds for path in r["change"])
                ahead = changes_ahead(browser, server, shown, choices * 4, max(1, runs), read_seconds, filtered)
                failed += ahead.pop("problems")
            except Exception as exc:
                ahead = {}
                failed.append(f"changes made ahead: {_first_line(exc)}")
            finally:
                server.stop()
            try:
                fresh = first_start(browser, port) if clone else None
            except Exception as exc:
                fresh = None
                failed.append(f"first start: {_first_line(exc)}")
        finally:
            browser.close()

    def median(kind: str, path: str) -> float | None:
        values = [r[kind][path] for r in rounds if path in r[kind]]
        return round(statistics.median(values), 1) if values else None

    first_path = shown[0][0]
    return {
        "rounds": len(rounds),
        "server_start_s": round(statistics.median(starts), 2) if starts else None,
        "after_start_ms": median("first", first_path),
        "after_start_page": first_path,
        "pages": [
            {
                "page": path,
                "title": title,
                "first_visit_ms": median("first", path),
                "second_visit_ms": median("second", path),
                "filter_change_ms": median("change", path),
                "filter_change_ahead_ms": _median(ahead.get(path, [])),
                "shared_link_ms": median("shared", path),
            }
            for path, title, _ in shown
        ],
        "pdf": {
            "page": "stepdown",
            "first_ms": _median([r["pdf_first"] for r in rounds if "pdf_first" in r]),
            "second_ms": _median([r["pdf_second"] for r in rounds if "pdf_second" in r]),
        },
        "first_start": fresh,
        "problems": failed + sorted({p for r in rounds for p in r["problems"]}),
    }


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None
