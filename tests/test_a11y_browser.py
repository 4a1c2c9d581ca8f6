"""WCAG 2.2 AA in a real browser: axe-core on every page after its charts have drawn, in local mode and signed in
through a real OpenID Connect round trip; keyboard order and focus; phone and laptop layouts, with screenshots."""

from __future__ import annotations

import os
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
PAGES = _url_paths()

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
            f'cookie_secret = "{os.urandom(24).hex()}"\n'
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
