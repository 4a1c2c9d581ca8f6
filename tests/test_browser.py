"""Real browser: `streamlit run` on loopback, Debian chromium via Playwright, every page, screenshots."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="needs Debian chromium (apt-get install -y chromium)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo_db_path):
    port = _free_port()
    env = dict(os.environ, OUTCOMES_DB=str(demo_db_path))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("streamlit did not start: " + proc.stderr.read().decode()[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _url_paths() -> list[str]:
    return re.findall(r'url_path="([^"]+)"', (ROOT / "app.py").read_text())


def _address(path: str) -> str:
    """Where a page lives: the default page (default=True) is served at the root, not at its url_path."""
    default = re.findall(r'url_path="([^"]+)"[^)]*default=True', (ROOT / "app.py").read_text())
    return "" if path in default else path


@pytest.mark.parametrize("path", _url_paths())
def test_page_in_browser(server, browser, path):
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    try:
        page.goto(f"{server}/{_address(path)}")
        page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=60_000)
        page.wait_for_load_state("networkidle")
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
        if path not in ("explore", "data"):
            page.wait_for_selector(".js-plotly-plot, [data-testid='stMetricValue']", timeout=60_000)
        assert page.get_by_text("Page not found").count() == 0, f"/{_address(path)} is not a page"
        # the address is the page's own (an unknown one would be sent back to the root): /overview stays
        assert page.url.split("?")[0].rstrip("/") == f"{server}/{_address(path)}".rstrip("/")
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{path}.png"), full_page=True)
    finally:
        page.close()


def test_shared_url_reproduces_filters(server, browser):
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    try:
        page.goto(f"{server}/stepdown?sites=Northside&window=30")
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        page.wait_for_load_state("networkidle")
        assert page.get_by_text("30-day step-down rate").count() >= 1
        assert page.locator('[data-testid="stMultiSelect"]').first.get_by_text("Northside").count() >= 1
    finally:
        page.close()


def test_a_table_is_drawn_when_opened(server, browser):
    """A closed "Table" holds no table; opening it reruns the page and draws it as HTML table markup."""
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    try:
        page.goto(f"{server}/stepdown")
        page.wait_for_selector(".js-plotly-plot", timeout=60_000)
        page.wait_for_load_state("networkidle")
        first = page.locator('[data-testid="stExpander"]').filter(has_text="Table").first
        assert first.locator("table").count() == 0
        first.locator("summary").click()
        first.locator('[data-testid="stTable"] table').wait_for(timeout=60_000)
    finally:
        page.close()
