"""Load and concurrency: many browser sessions at once on one server, and a data reload while they are in use.

One Chromium, one browser context per session (Playwright's async API), `streamlit run app.py` on 127.0.0.1.
A page's "state" is its sidebar "Data through" caption plus a fingerprint of everything it computed (chart data,
metric values). During a reload every state seen must be exactly the old version's or exactly the new one's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import re
import threading
from pathlib import Path

import pytest

from outcomes.ingest.loader import load

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def _limit() -> float:
    """Seconds each test may take before it counts as hung: 200, twice what the many-sessions test takes alone on
    an idle 2-core machine (about 80 s: each fresh browser context spends seconds of Chromium drawing its
    charts, and the suite's other worker shares the cores), stretched up to 3x when other work already keeps
    every core busy; CONCURRENCY_LIMIT_S overrides."""
    if "CONCURRENCY_LIMIT_S" in os.environ:
        return float(os.environ["CONCURRENCY_LIMIT_S"])
    busy = os.getloadavg()[0] / (os.cpu_count() or 1)
    return 200 * min(3.0, max(1.0, busy / 2))


TIMEOUT_MS = int(_limit() * 1000)  # any single wait (page load, chart drawn)


pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian chromium (apt-get install -y chromium)"
)


def url_paths() -> list[str]:
    """Every page's address: the default page's is the root (its url_path is never in an address)."""
    text = (ROOT / "app.py").read_text()
    default = re.findall(r'url_path="([^"]+)"[^)]*default=True', text)
    return ["" if p in default else p for p in re.findall(r'url_path="([^"]+)"', text)]


# What a page computed: every chart's data (as plotly.js holds it after decoding) and every metric.
FINGERPRINT = """() => JSON.stringify({
    charts: Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => (g._fullData || []).map(t => ({
        name: t.name || null, x: Array.from(t.x || []), y: Array.from(t.y || []), z: Array.from(t.z || []).map(
            r => Array.isArray(r) || ArrayBuffer.isView(r) ? Array.from(r) : r), values: Array.from(t.values || []),
        value: Array.from(t.value || []), links: t.link ? Array.from(t.link.value || []) : [],
        nodes: t.node ? Array.from(t.node.label || []) : []}))),
    metrics: Array.from(document.querySelectorAll('[data-testid="stMetricValue"]')).map(m => m.textContent.trim()),
})"""
VERSION = r"""() => {
    const caps = Array.from(document.querySelectorAll('[data-testid="stSidebar"] [data-testid="stCaptionContainer"]'));
    const hit = caps.map(c => c.textContent.trim()).find(t => t.startsWith('Data through'));
    return hit ? hit.replace(/ \(\d+ days ago\)$/, '') : null;  // the stale-data note is not the version
}"""
# Finished: no run in progress, and nothing left over from the previous run (Streamlit marks an element it has
# not drawn again in this run data-stale until the run replaces or removes it).
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && !document.querySelector('[data-stale=\"true\"]')"


async def settle(page, charts: bool) -> None:
    """Wait until the page's script run has finished and its charts have drawn."""
    await page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=TIMEOUT_MS)
    await page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
    if charts:
        await page.wait_for_selector(".js-plotly-plot, [data-testid='stMetricValue']", timeout=TIMEOUT_MS)
    await page.wait_for_function(IDLE, timeout=TIMEOUT_MS)


async def state(page) -> tuple[str | None, str]:
    """(data-through caption, fingerprint), read twice until stable so a half-drawn chart is not recorded."""
    last = None
    for _ in range(40):
        await page.wait_for_function(IDLE, timeout=TIMEOUT_MS)
        now = (await page.evaluate(VERSION), await page.evaluate(FINGERPRINT))
        if now == last:
            return now
        last = now
        await asyncio.sleep(0.25)
    raise AssertionError(f"{page.url} never settled")


async def errors(page) -> list[str]:
    return await page.locator(ERRORS).all_inner_texts()


def has_charts(path: str) -> bool:
    return not path.startswith(("explore", "data"))


try:
    from playwright.async_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the module is skipped without chromium anyway
    PlaywrightTimeout = TimeoutError


async def with_browser(work):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return await asyncio.wait_for(work(browser), timeout=_limit())
        finally:
            await browser.close()


async def open_page(browser, url: str):
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(url, timeout=TIMEOUT_MS)
    return page


# --- many sessions at once ---------------------------------------------------------------------------------


def sessions() -> list[str]:
    """Every page, and filtered views of the data pages (sites from the demo generator)."""
    paths = url_paths()
    filtered = [
        "stepdown?sites=Northside",
        "stepdown?sites=Riverside&window=30",
        "engagement?weeks=8&sites=Eastgate",
        "overview?sites=Northside&sites=Riverside",
    ]
    return paths + [f for f in filtered if f.split("?")[0] in paths]


def test_many_concurrent_sessions(demo_db_path, streamlit_server):
    url = streamlit_server(demo_db_path)
    targets = sessions()
    assert len(targets) >= 10

    async def one(browser, target):
        page = await open_page(browser, f"{url}/{target}")
        try:
            await settle(page, has_charts(target.split("?")[0]))
            version, fingerprint = await state(page)
            return target, version, fingerprint, await errors(page)
        finally:
            await page.context.close()

    async def work(browser):
        return await asyncio.gather(*(one(browser, t) for t in targets))

    results = asyncio.run(with_browser(work))  # fails after _limit() seconds
    assert not [(t, e) for t, _, _, e in results if e], "error elements on a page"
    assert {v for _, v, _, _ in results} == {"Data through 31 Oct 2025"}, [(t, v) for t, v, _, _ in results]
    shown = {t: f for t, _, f, _ in results}
    assert shown["stepdown?sites=Northside"] != shown["stepdown"], "the URL's filter did not apply"
    assert shown["stepdown?sites=Riverside&window=30"] != shown["stepdown?sites=Northside"]


# --- a reload while sessions are active ---------------------------------------------------------------------

RELOAD_TARGETS = ["stepdown", "overview", "stepdown?sites=Northside", "retention?sites=Eastgate", "pathways"]
OLD, NEW = "Data through 31 Oct 2025", "Data through 31 Aug 2025"


@pytest.fixture(scope="module")
def second_dataset(tmp_path_factory) -> Path:
    """Other synthetic extracts, through 31 Aug 2025, with a different seed: every number differs."""
    from outcomes.ingest.demo import generate

    folder = tmp_path_factory.mktemp("reload") / "files"
    generate(folder, clients=1500, seed=11, through=dt.date(2025, 8, 31))
    return folder


def test_reload_during_use_shows_one_version_per_page(demo_db_path, second_dataset, streamlit_server, tmp_path):
    live = tmp_path / "live.duckdb"
    load(demo_db_path.parent / "files", live)  # the old version, published by the real loader
    url = streamlit_server(live)
    targets = [t for t in RELOAD_TARGETS if t.split("?")[0] in url_paths()]
    seen: list[tuple[str, str, str | None, str]] = []  # (target, phase, version, fingerprint)
    problems: list[str] = []

    async def record(page, target, phase):
        version, fingerprint = await state(page)
        seen.append((target, phase, version, fingerprint))
        problems.extend(f"{target}: {e}" for e in await errors(page))

    async def work(browser):
        pages = await asyncio.gather(*(open_page(browser, f"{url}/{t}") for t in targets))
        await asyncio.gather(*(settle(p, has_charts(t.split("?")[0])) for p, t in zip(pages, targets)))
        await asyncio.gather(*(record(p, t, "before") for p, t in zip(pages, targets)))

        done = threading.Event()
        failure: list[BaseException] = []

        def publish():
            try:
                load(second_dataset, live)  # the new version replaces the live file while the sessions run
            except BaseException as exc:
                failure.append(exc)
            finally:
                done.set()

        async def keep_using(page, target, k):
            for rounds in itertools.count(k):
                published = done.is_set()  # this round starts after the new version is in place
                if rounds % 2:
                    await page.keyboard.press("r")  # rerun in the same session
                    await asyncio.sleep(0.5)
                else:
                    await page.reload(timeout=TIMEOUT_MS)  # a new session
                if published:  # give the run this started time to begin; the assertions below judge what it shows
                    try:
                        await page.wait_for_function(
                            f"() => ({VERSION})() === {json.dumps(NEW)}", timeout=min(TIMEOUT_MS, 60_000)
                        )
                    except PlaywrightTimeout:
                        pass
                await settle(page, has_charts(target.split("?")[0]))
                await record(page, target, "published" if published else "during")
                if published:
                    return

        loader = asyncio.get_running_loop().run_in_executor(None, publish)
        await asyncio.gather(loader, *(keep_using(p, t, k) for k, (p, t) in enumerate(zip(pages, targets))))
        assert not failure, failure
        for page in pages:
            await page.context.close()

        fresh = await asyncio.gather(*(open_page(browser, f"{url}/{t}") for t in targets))
        await asyncio.gather(*(settle(p, has_charts(t.split("?")[0])) for p, t in zip(fresh, targets)))
        await asyncio.gather(*(record(p, t, "after") for p, t in zip(fresh, targets)))
        for page in fresh:
            await page.context.close()

    asyncio.run(with_browser(work))  # fails after _limit() seconds
    assert not problems, problems

    old = {t: f for t, phase, v, f in seen if phase == "before"}
    new = {t: f for t, phase, v, f in seen if phase == "after"}
    assert {v for _, phase, v, _ in seen if phase == "before"} == {OLD}, [
        (t, v) for t, ph, v, _ in seen if ph == "before"
    ]
    assert {v for _, phase, v, _ in seen if phase == "after"} == {NEW}, "new sessions must see the new data"
    for target in targets:
        assert old[target] != new[target], f"{target}: the two versions should look different"
        assert json.loads(old[target])["charts"] or json.loads(old[target])["metrics"], f"{target} shows nothing"
    mixed = [
        (t, v)
        for t, phase, v, f in seen
        if phase in ("during", "published") and not ((v == OLD and f == old[t]) or (v == NEW and f == new[t]))
    ]
    assert not mixed, f"pages mixing data versions (caption vs numbers): {mixed}"
    published = [(t, v) for t, phase, v, _ in seen if phase == "published"]
    assert len(published) == len(targets) and {v for _, v in published} == {NEW}, published
