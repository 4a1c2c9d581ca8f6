"""A bounded load run on loopback: N browser sessions across three roles on one `streamlit run app.py` with
login on, while one analyst runs heavy ad-hoc SQL; and a director page's time with and without that SQL.

Identities come from Streamlit's own signed identity cookie (`_streamlit_user`, signed with the [auth]
cookie_secret of the server's secrets file), so the real server, auth and roles code run unchanged; no identity
provider is contacted. Used by tests/test_load.py; `python tests/load_tools.py SESSIONS SECONDS` runs it alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-sync"]
PORTS = range(8610, 8620)
SECRET = "9f2c4e7a1b8d3f6e0a5c9b2d7e4f1a8c3b6d0e9f2a5c8b1d4e7f0a3c6b9d2e5f"
USERS = {  # role: (e-mail, sites in the roles file)
    "admin": ("admin@provider.net", "*"),
    "director_all": ("director.all@provider.net", "*"),
    "director_one": ("director.north@provider.net", ["Northside"]),
    "analyst": ("analyst@provider.net", "*"),
}
PAGES = ["overview", "stepdown", "engagement", "retention", "pathways"]
HEAVY = "select len(list_sort(list_reverse(range({n}))))"  # stopped at the time limit, every time
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


def _is_browser(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").lower()
    except OSError:
        return True  # gone already: not a worker that is still there
    return b"chrom" in command or b"kaleido" in command


def proc_stats(pid: int) -> dict:
    """RSS (MB) and threads of a process, and the RSS of its children (the SQL workers)."""

    def status(p: int) -> dict:
        out = {}
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            out[k] = v.strip()
        return out

    me = status(pid)
    children = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            children += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    # SQL workers only: the PDF's drawing browser (kaleido's Chromium) is a child of the server too
    children = [c for c in children if not _is_browser(c)]
    child_rss = 0
    for c in children:
        try:
            child_rss += int(status(c)["VmRSS"].split()[0])
        except (OSError, KeyError):
            pass
    return {
        "rss_mb": round(int(me["VmRSS"].split()[0]) / 1024, 1),
        "threads": int(me["Threads"]),
        "workers": len(children),
        "workers_rss_mb": round(child_rss / 1024, 1),
    }


class Server:
    """`streamlit run app.py` on 127.0.0.1 with a valid [auth] section and a roles file for USERS."""

    def __init__(self, db_path: Path, sql_timeout: float = 2.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="outcomes-load-"))
        secrets = self.dir / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "{self.url}/oauth2callback"\n'
            f'cookie_secret = "{SECRET}"\n'
            'client_id = "0oa1b2c3d4"\n'
            'client_secret = "kq8ZpL2vN5xR7tW1yB4cF6hJ9mQ3sD0g"\n'
            'server_metadata_url = "https://login.provider.net/.well-known/openid-configuration"\n'
        )
        roles = self.dir / "roles.toml"
        roles.write_text(
            "".join(
                f'[users."{email}"]\nrole = "{role.split("_")[0]}"\nsites = {json.dumps(sites)}\n'
                for role, (email, sites) in USERS.items()
            )
        )
        self.log = open(self.dir / "server.log", "wb")
        env = dict(
            os.environ,
            OUTCOMES_DB=str(db_path),
            OUTCOMES_ROLES=str(roles),
            OUTCOMES_AUDIT_LOG=str(self.dir / "audit.jsonl"),
            OUTCOMES_SQL_TIMEOUT=str(sql_timeout),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
            + ["--server.port", str(self.port), "--server.address", "127.0.0.1", f"--secrets.files={secrets}"]
            + ["--browser.gatherUsageStats", "false"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        import urllib.request

        deadline = time.monotonic() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        "streamlit did not start: " + (self.dir / "server.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.3)

    def cookie(self, role: str) -> dict:
        from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

        email = USERS[role][0]
        claims = {"origin": self.url, "is_logged_in": True, "email": email, "email_verified": True, "sub": role}
        value = create_signed_value(SECRET, "_streamlit_user", json.dumps(claims)).decode()
        return {"name": "_streamlit_user", "value": value, "url": self.url}

    def stats(self) -> dict:
        return proc_stats(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@dataclass
class Result:
    sessions: int
    seconds: float
    page_times: dict[str, list[float]] = field(default_factory=dict)  # by role
    failures: list[str] = field(default_factory=list)
    adhoc_runs: int = 0
    adhoc_messages: list[str] = field(default_factory=list)
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    load_average: tuple = ()

    def p95(self, times: list[float]) -> float | None:
        if not times:
            return None
        ordered = sorted(times)
        return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]

    def summary(self) -> dict:
        every = [t for ts in self.page_times.values() for t in ts]
        return {
            "sessions": self.sessions,
            "seconds": self.seconds,
            "failed_sessions": len(self.failures),
            "failures": self.failures[:10],
            "pages_loaded": len(every),
            "p95_page_s": self.p95(every),
            "median_page_s": statistics.median(every) if every else None,
            "p95_by_role_s": {r: self.p95(ts) for r, ts in self.page_times.items()},
            "adhoc_runs": self.adhoc_runs,
            "adhoc_messages": sorted(set(self.adhoc_messages))[:3],
            "server_before": self.before,
            "server_after": self.after,
            "load_average": self.load_average,
        }


async def _context(browser, server: Server, role: str):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_cookies([server.cookie(role)])
    return context


async def _settle(page, timeout_ms: int) -> None:
    await page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=timeout_ms)
    await page.wait_for_function(IDLE, timeout=timeout_ms)
    await page.wait_for_selector(".js-plotly-plot, [data-testid='stMetricValue']", timeout=timeout_ms)


async def timed_page(page, url: str, timeout_ms: int) -> float:
    """Seconds from navigation until the page's run has finished and its charts or metrics are drawn."""
    started = time.monotonic()
    await page.goto(url, timeout=timeout_ms)
    await _settle(page, timeout_ms)
    took = time.monotonic() - started
    if await page.query_selector(ERRORS):
        raise AssertionError(f"an error is shown on {url}: {(await page.inner_text(ERRORS))[:200]}")
    return took


async def _browse(browser, server: Server, role: str, n: int, until: float, result: Result, timeout_ms: int):
    context = await _context(browser, server, role)
    page = await context.new_page()
    try:
        i = n
        while time.monotonic() < until:
            path = PAGES[i % len(PAGES)]
            i += 1
            took = await timed_page(page, f"{server.url}/{path}", timeout_ms)
            result.page_times.setdefault(role, []).append(took)
            caption = await page.inner_text('[data-testid="stSidebar"]')
            if USERS[role][0] not in caption:
                raise AssertionError(f"session {n} is not signed in as {role}")
    except Exception as exc:  # a failed session: recorded, the run carries on
        result.failures.append(f"{role} #{n}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        await context.close()


async def run_adhoc(page, server: Server, n: int, timeout_ms: int) -> str:
    """Type one heavy statement into Explore's ad-hoc tab, run it, and return the message it ends with. Typing
    while the page is still being redrawn can be lost, so an unanswered statement is typed again (3 tries)."""
    box = page.locator("textarea")
    alert = page.locator('[data-testid="stAlertContentError"]')
    if await alert.count():  # clear the last message first, so the next one is this statement's
        await box.fill("")
        await box.press("Control+Enter")
        await alert.first.wait_for(state="detached", timeout=timeout_ms)
    for attempt in range(3):
        await page.wait_for_function(IDLE, timeout=timeout_ms)
        await box.fill(HEAVY.format(n=20_000_000 + n))
        await box.press("Control+Enter")
        try:
            await alert.first.wait_for(timeout=timeout_ms // 3 if attempt < 2 else timeout_ms)
        except Exception:
            if attempt == 2:
                raise
            continue
        return (await alert.first.inner_text()).strip()
    raise AssertionError("unreachable")


async def open_adhoc(browser, server: Server, timeout_ms: int):
    """An analyst's page on Explore's ad-hoc SQL tab, ready to type into."""
    context = await _context(browser, server, "analyst")
    page = await context.new_page()
    await page.goto(f"{server.url}/explore", timeout=timeout_ms)
    await page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=timeout_ms)
    await page.wait_for_function(IDLE, timeout=timeout_ms)
    await page.get_by_role("tab", name="Ad-hoc SQL").click(timeout=timeout_ms)
    await page.locator("textarea").wait_for(timeout=timeout_ms)
    return page


async def _analyst(page, server: Server, until: float, result: Result, timeout_ms: int):
    try:
        n = 0
        while True:  # at least one statement, however long the pages take
            result.adhoc_messages.append(await run_adhoc(page, server, n, timeout_ms))
            result.adhoc_runs += 1
            n += 1
            if time.monotonic() >= until:
                break
    except Exception as exc:
        result.failures.append(f"analyst: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


async def _load(server: Server, sessions: int, seconds: float, timeout_ms: int) -> Result:
    from playwright.async_api import async_playwright

    result = Result(sessions, seconds)
    roles = ["admin", "director_all", "director_one"]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # warm the caches once per role, as a server that has been up a while would be
            for role in roles:
                context = await _context(browser, server, role)
                page = await context.new_page()
                await timed_page(page, f"{server.url}/overview", timeout_ms)
                await context.close()
            analyst = await open_adhoc(browser, server, timeout_ms)
            result.before = server.stats()
            until = time.monotonic() + seconds
            tasks = [_analyst(analyst, server, until, result, timeout_ms)]
            for n in range(sessions):
                tasks.append(_browse(browser, server, roles[n % 3], n, until, result, timeout_ms))
            await asyncio.gather(*tasks)
            result.after = server.stats()
            result.load_average = os.getloadavg()
        finally:
            await browser.close()
    return result


def load(db_path: Path, sessions: int, seconds: float, timeout_s: float = 180) -> dict:
    """The load run: `sessions` browsers (admin, all-site director, one-site director in turn) for `seconds`,
    one analyst running heavy ad-hoc SQL throughout. Returns the summary."""
    server = Server(db_path)
    try:
        return asyncio.run(_load(server, sessions, seconds, int(timeout_s * 1000))).summary()
    finally:
        server.stop()


async def _director_times(server: Server, repeats: int, timeout_ms: int) -> dict:
    from playwright.async_api import async_playwright

    out = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            director = await (await _context(browser, server, "director_one")).new_page()
            await timed_page(director, f"{server.url}/stepdown", timeout_ms)  # warm
            quiet = [await timed_page(director, f"{server.url}/stepdown", timeout_ms) for _ in range(repeats)]
            analyst = await open_adhoc(browser, server, timeout_ms)
            stop = asyncio.Event()
            messages = []

            async def heavy():
                n = 0
                while not stop.is_set():
                    messages.append(await run_adhoc(analyst, server, 1000 + n, timeout_ms))
                    n += 1

            task = asyncio.create_task(heavy())
            await asyncio.sleep(1.0)  # the first statement is running
            busy = [await timed_page(director, f"{server.url}/stepdown", timeout_ms) for _ in range(repeats)]
            stop.set()
            await task
            out = {
                "quiet_median_s": statistics.median(quiet),
                "heavy_median_s": statistics.median(busy),
                "ratio": statistics.median(busy) / statistics.median(quiet),
                "quiet_s": [round(t, 3) for t in quiet],
                "heavy_s": [round(t, 3) for t in busy],
                "heavy_statements": len(messages),
                "load_average": os.getloadavg(),
            }
        finally:
            await browser.close()
    return out


def director_under_heavy_sql(db_path: Path, repeats: int = 8, timeout_s: float = 180) -> dict:
    """Median time of a one-site director's Step-down page, quiet and while an analyst's heavy ad-hoc
    statements run back to back on the same server."""
    server = Server(db_path, sql_timeout=4.0)
    try:
        return asyncio.run(_director_times(server, repeats, int(timeout_s * 1000)))
    finally:
        server.stop()


if __name__ == "__main__":
    db = Path(os.environ.get("OUTCOMES_DB") or ROOT / "data" / "outcomes.duckdb")
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 120
    print(json.dumps({"load": load(db, sessions, seconds), "director": director_under_heavy_sql(db)}, indent=1))
