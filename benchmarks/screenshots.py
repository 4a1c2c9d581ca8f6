"""Screenshots of every page at laptop (1280x720) and phone (390x844) size, from a real server and Chromium.

    python benchmarks/screenshots.py [--db data/outcomes.duckdb] [--port 8630] [--out docs/screenshots]

Without --db it builds the first-start demo (3,000 clients, seed 42) in a temporary folder. Each shot is the
whole page, taken once the page's charts or tiles are drawn and the app is idle: the window keeps its width and
grows to the page's height (the app scrolls inside its main section, which a full-page shot would cut).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
SIZES = {"laptop": (1280, 720), "phone": (390, 844)}


def pages() -> list[str]:
    """Every page's address in app.py: the default page at the root, a hidden twin of a page left out."""
    out = []
    for call in re.findall(r"st\.Page\((.*?)\),?\n", (ROOT / "app.py").read_text(), flags=re.S):
        path = re.search(r'url_path="([^"]+)"', call).group(1)
        if 'visibility="hidden"' in call:
            continue
        out.append("" if "default=True" in call else path)
    return out


def demo_db(folder: Path) -> Path:
    from outcomes.ingest.demo import generate
    from outcomes.ingest.loader import load

    generate(folder / "files", clients=3000, seed=42)
    load(folder / "files", folder / "demo.duckdb")
    return folder / "demo.duckdb"


def serve(db: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, OUTCOMES_DB=str(db))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port)]
        + ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("streamlit did not start")


def shoot(base: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    made = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for size, (width, height) in SIZES.items():
            for path in pages():
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(f"{base}/{path}")
                page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=90_000)
                if path not in ("explore", "data"):
                    page.wait_for_selector(".js-plotly-plot, [data-testid='stMetricValue']", timeout=90_000)
                page.wait_for_function(
                    "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=90_000
                )
                page.wait_for_timeout(1500)  # plotly's and the sparklines' own drawing
                # the app scrolls inside its main section, not the document: grow the window to all of it
                tall = page.evaluate(
                    '() => Math.max(...[...document.querySelectorAll(\'[data-testid="stMain"], '
                    '[data-testid="stSidebarContent"]\')].map(e => e.scrollHeight), 0)'
                )
                if tall > height:
                    page.set_viewport_size({"width": width, "height": tall + 40})
                    page.wait_for_timeout(1500)
                name = out / f"{path or 'overview'}-{size}.png"
                page.screenshot(path=str(name), full_page=True)
                made.append(name)
                page.close()
        browser.close()
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path)
    ap.add_argument("--port", type=int, default=8630)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or demo_db(Path(tmp))
        proc = serve(db, args.port)
        try:
            for name in shoot(f"http://127.0.0.1:{args.port}", args.out):
                print(name.relative_to(ROOT) if name.is_relative_to(ROOT) else name)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
