"""WCAG 2.2 AA in a real browser: axe-core on every page after its charts have drawn, in local mode and signed in
through a real OpenID Connect round trip; keyboard order and focus; phone and laptop layouts, with screenshots."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from oidc_provider import Provider
from test_browser import CHROMIUM, CHROMIUM_ARGS, _address, _url_paths

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "tests" / "screenshots" / "a11y"  # copied to docs/screenshots when they change
PORTS = range(8660, 8670)
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = {"serious", "critical"}
PHONE, LAPTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 720}
EMAIL = "admin@example.org"  # an admin sees every page, the Data page too
PAGES = [p for p in _url_paths() if _address(p)]  # the default page's own path is served at the root

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian chromium")


def _port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {PORTS}")


@contextmanager
def _streamlit(db_path: Path, port: int, *args: str):
    log = open(os.devnull, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
        + ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
        + list(args),
        cwd=ROOT,
        env=dict(os.environ, OUTCOMES_DB=str(db_path)),
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("streamlit did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def local(demo_db_path, browser):
    """One local-mode server and one browser tab for the module."""
    with _streamlit(demo_db_path, _port()) as url:
        page = browser.new_page(viewport=LAPTOP)
        yield url, page
        page.close()


@pytest.fixture(scope="module")
def signed_in(demo_db_path, browser, tmp_path_factory):
    """A server with login on, and a tab signed in through the loopback OpenID Connect provider."""
    tmp = tmp_path_factory.mktemp("login")
    port = _port()
    with Provider(EMAIL) as provider:
        (tmp / "roles.toml").write_text(f'[users."{EMAIL}"]\nrole = "admin"\nsites = "*"\n')
        (tmp / "secrets.toml").write_text(
            f'roles_file = "{tmp / "roles.toml"}"\n[auth]\n'
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            f'cookie_secret = "{os.urandom(32).hex()}"\n'
            f'client_id = "{provider.client_id}"\nclient_secret = "test-secret"\n'
            f'server_metadata_url = "{provider.issuer}/.well-known/openid-configuration"\n'
        )
        with _streamlit(demo_db_path, port, "--secrets.files", str(tmp / "secrets.toml")) as url:
            context = browser.new_context(viewport=LAPTOP)
            page = context.new_page()
            page.goto(url)
            drawn(page, charts=False)
            page.get_by_role("button", name="Sign in").click()  # to the provider and back, signed in
            page.wait_for_selector('[data-testid="stMetricValue"]', timeout=60_000)
            yield url, page
            context.close()


def drawn(page, charts: bool = True) -> None:
    """Wait until the page has run and every chart on it has drawn (a run of axe before that finds nothing)."""
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=60_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    if charts:
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                       .every(c => c.querySelector('.main-svg'))
                  && [...document.querySelectorAll('[data-testid="stMetric"] .vega-embed')]
                       .every(c => c.querySelector('svg, canvas'))""",
            timeout=60_000,
        )
    page.wait_for_timeout(300)  # the last chart's transition


def visit(page, url: str, path: str) -> None:
    page.goto(f"{url}/{_address(path)}")
    drawn(page)
    if path not in ("explore", "data"):
        page.wait_for_selector("[data-testid='stPlotlyChart'] .main-svg, [data-testid='stMetricValue']")
    assert page.locator('[data-testid="stException"]').count() == 0


def blocking(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page, options={"runOnly": {"type": "tag", "values": TAGS}}).response
    assert result["passes"], "axe ran no checks"
    return [
        f"{v['id']} ({v['impact']}): {n['target']} {n.get('failureSummary', '')[:200]}"
        for v in result["violations"]
        if v["impact"] in BLOCKING
        for n in v["nodes"]
    ]


@pytest.mark.parametrize("path", PAGES)
def test_axe_local_mode(local, path):
    url, page = local
    visit(page, url, path)
    charts = page.locator('[data-testid="stPlotlyChart"]').count()
    if path not in ("overview", "explore", "data"):
        assert charts, "a director page draws charts before axe runs"
    assert blocking(page) == []


def test_axe_sign_in_page(browser, signed_in):
    url, _ = signed_in
    page = browser.new_page(viewport=LAPTOP)  # a fresh context: signed out
    try:
        page.goto(url)
        drawn(page, charts=False)
        assert page.get_by_role("button", name="Sign in").count() == 1
        assert blocking(page) == []
    finally:
        page.close()


@pytest.mark.parametrize("path", PAGES)
def test_axe_signed_in(signed_in, path):
    url, page = signed_in
    visit(page, url, path)
    assert page.get_by_text(f"Signed in as {EMAIL}").count() == 1
    assert blocking(page) == []


FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const s = getComputedStyle(e), r = e.getBoundingClientRect(), group = e.closest(".modebar-group");
  return {
    testid: e.closest("[data-testid]")?.dataset.testid || "",
    text: (e.getAttribute("aria-label") || e.innerText || "").trim().slice(0, 60),
    outline: s.outlineStyle === "none" ? 0 : parseFloat(s.outlineWidth),
    colour: s.outlineColor,
    shown: r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight && r.left < innerWidth
      && (!group || getComputedStyle(group).opacity === "1"),
    id: e.dataset.tabProbe || (e.dataset.tabProbe = String(Math.random())),
  };
}"""


def _colour(css: str) -> str:
    r, g, b = (int(float(v)) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def test_keyboard_order_focus_and_no_trap(local):
    """From the top of Step-down: skip link, page links, sidebar filters, then the page's controls, a chart's
    buttons, its opened table and its CSV button; every stop shows a 2px ring of 3:1 or more; Tab runs off the end
    of the page (nothing traps it) and Shift+Tab walks back."""
    from outcomes.present.contrast import GRAPHICS, ratio

    url, page = local
    visit(page, url, "stepdown")
    page.locator('[data-testid="stExpander"]').filter(has_text="Table").first.locator("summary").click()
    page.wait_for_selector('[data-testid="stTable"] table', timeout=60_000)
    drawn(page)
    # start sequential navigation at the top of the document, as after loading the page
    page.evaluate(
        "() => { const a = document.createElement('span'); a.tabIndex = -1; document.body.prepend(a); a.focus(); }"
    )
    stops = []
    for _ in range(400):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUSED)
        if stop is None or (stops and stop["id"] == stops[0]["id"]):
            break  # off the end of the page, or round to the first stop again
        assert not stops or stop["id"] != stops[-1]["id"], f"focus stuck on {stop}"
        stops.append(stop)
    else:
        pytest.fail("Tab never left the page: focus is trapped")
    names = [f"{s['testid']}:{s['text']}" for s in stops]

    def first(testid: str, text: str = "") -> int:
        return next(i for i, s in enumerate(stops) if s["testid"] == testid and text in s["text"])

    order = [
        first("stSkipToContent"),
        first("stSidebarNavLink", "Overview"),
        first("stSidebarNavLink", "Pathways"),
        first("stDateInputFieldsScroller", "From"),
        first("stMultiSelectTagsContainer", "Sites"),
        first("stExpander", "Client group"),
        first("stButtonGroup"),  # the window control
        first("stPlotlyChart", "Download plot"),
        first("stExpander", "Table"),
        first("stBaseButton-secondary", "CSV"),
    ]
    assert order == sorted(order), names
    assert len(stops) > order[-1] + 5, "focus goes on past the first chart"
    for stop in stops:
        assert stop["shown"], f"focused but not visible: {stop}"
        assert stop["outline"] >= 2, f"no focus ring: {stop}"
        assert ratio(_colour(stop["colour"]), "#ffffff") >= GRAPHICS, stop
    # back from the CSV button to its table's expander
    csv = order[-1]
    page.evaluate("(id) => document.querySelector(`[data-tab-probe='${id}']`).focus()", stops[csv]["id"])
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED)["id"] == stops[csv - 1]["id"]


LAYOUT = """() => {
  const main = document.querySelector('[data-testid="stMain"]'), se = document.scrollingElement;
  const box = (e) => { const r = e.getBoundingClientRect(); return {l: r.left, r: r.right, t: r.top, b: r.bottom, w: r.width}; };
  const cut = [...document.querySelectorAll('[data-testid="stMain"] *, [data-testid="stSidebar"] *')]
    .filter((e) => e.children.length === 0 && e.innerText && e.offsetParent !== null)
    .filter((e) => { const s = getComputedStyle(e); return (s.textOverflow === "ellipsis" || s.overflow === "hidden")
      && e.scrollWidth > e.clientWidth + 1; })
    .map((e) => e.innerText.slice(0, 40));
  return {
    page: se.scrollWidth, main: main.scrollWidth, mainWidth: main.clientWidth, width: innerWidth, cut,
    height: main.scrollHeight,
    tiles: [...document.querySelectorAll('[data-testid="stMetric"]')].map(box),
    charts: [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].map(box),
  };
}"""

COVERED = """(chart) => {
  const bar = chart.querySelector(".modebar");
  if (!bar) return [];
  const m = bar.getBoundingClientRect();
  const hit = (r) => r.width > 0 && r.left < m.right && r.right > m.left && r.top < m.bottom && r.bottom > m.top;
  return [...chart.querySelectorAll(".legend .traces, .g-xtitle, .g-ytitle, .xtick text, .ytick text, .annotation")]
    .filter((e) => hit(e.getBoundingClientRect()))
    .map((e) => e.textContent.slice(0, 30));
}"""


@pytest.mark.parametrize("size", ["phone", "laptop"])
def test_phone_and_laptop_layout(local, size):
    """No sideways page scroll, tiles and charts one under the other on a phone (side by side on a laptop), no
    cut labels, the mode bar (shown on hover) over no legend entry or axis label, no serious axe finding at
    phone width with a table open; a screenshot of each page."""
    url, page = local
    viewport = PHONE if size == "phone" else LAPTOP
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for path in PAGES:
        page.set_viewport_size(viewport)
        visit(page, url, path)
        got = page.evaluate(LAYOUT)
        if got["page"] > got["width"] or got["main"] > got["mainWidth"]:
            problems.append(f"{path}: scrolls sideways ({got['page']}, {got['main']} > {got['width']})")
        if got["cut"]:
            problems.append(f"{path}: labels cut: {got['cut']}")
        for item in got["tiles"] + got["charts"]:
            if item["r"] > got["width"] + 1:
                problems.append(f"{path}: a tile or chart runs off the screen ({item['r']:.0f})")
        tiles = got["tiles"]
        if size == "phone" and len(tiles) > 1 and len({round(t["l"]) for t in tiles}) != 1:
            problems.append(f"{path}: tiles side by side on a phone")
        if size == "laptop" and len(tiles) > 1 and len({round(t["t"]) for t in tiles}) == len(tiles):
            problems.append(f"{path}: no tiles side by side on a laptop")
        if size == "phone" and any(c["w"] < got["width"] * 0.8 for c in got["charts"]):
            problems.append(f"{path}: a chart narrower than the phone screen (columns not stacked)")
        for i in range(page.locator('[data-testid="stPlotlyChart"]').count()):
            chart = page.locator('[data-testid="stPlotlyChart"]').nth(i)
            chart.hover(position={"x": 5, "y": 5})  # shows the hover-only mode bar
            covered = chart.evaluate(COVERED)
            if covered:
                problems.append(f"{path}: chart {i}: the mode bar covers {covered}")
        if size == "phone":  # axe at phone width too, with a table open (a wide one scrolls in its box)
            tables = page.locator('[data-testid="stMain"] [data-testid="stExpander"] summary:visible')
            tables = tables.filter(has_text=re.compile(r"Table$"))
            if tables.count():
                tables.first.click()
                page.wait_for_selector('[data-testid="stTable"] table', timeout=60_000)
                drawn(page)
            problems += [f"{path}: {v}" for v in blocking(page)]
        page.set_viewport_size({"width": viewport["width"], "height": min(got["height"], 16_000)})
        page.wait_for_timeout(500)
        page.screenshot(path=str(SHOTS / f"{path}-{size}-a11y.png"))
    page.set_viewport_size(LAPTOP)
    assert problems == [], "\n".join(problems)
