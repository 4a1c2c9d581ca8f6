"""Fail closed on a real server: `streamlit run app.py` bound to every interface with no login shows the refusal
page (in a real Chromium) and writes one server-log line saying what to configure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
PORTS = range(8680, 8690)  # apart from the load test's, which may run beside it
SHOTS = ROOT / "tests" / "screenshots"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian chromium")


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {PORTS}")


@pytest.fixture
def open_server(demo_db_path):
    """A server listening on 0.0.0.0 without [auth]; yields (url on loopback, the server's stderr text)."""
    port = _free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
        + ["--server.port", str(port), "--server.address", "0.0.0.0", "--browser.gatherUsageStats", "false"],
        cwd=ROOT,
        env=dict(os.environ, OUTCOMES_DB=str(demo_db_path)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("streamlit did not start")
            time.sleep(0.3)

    def output() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")

    yield url, output
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def test_open_address_without_login_serves_only_the_refusal(open_server):
    from playwright.sync_api import sync_playwright

    url, output = open_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            for path in ("/", "/explore?q=stepdown_rate", "/data"):
                page = browser.new_page(viewport={"width": 1200, "height": 700})
                page.goto(url + path)
                page.get_by_text("This server is not configured safely, so it shows nothing.").wait_for(timeout=60_000)
                # the explanation is drawn after the heading: wait for it too before reading the page
                page.get_by_text("no login is configured", exact=False).first.wait_for(timeout=60_000)
                body = page.inner_text("body")
                assert "server.address is '0.0.0.0' and no login is configured" in body
                assert "127.0.0.1" in body and "[auth]" in body
                assert "Local mode" not in body and "Data through" not in body
                assert not page.query_selector(".js-plotly-plot, [data-testid='stMetricValue'], textarea")
                if path == "/":
                    SHOTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(SHOTS / "refusal.png"), full_page=True)
                page.close()
        finally:
            browser.close()
    lines = [line for line in output().splitlines() if "refusing to serve" in line]
    assert len(lines) == 1, output()[-3000:]  # one line per process, not one per visit
    assert "server.address is '0.0.0.0'" in lines[0] and "[auth] section in .streamlit/secrets.toml" in lines[0]
