"""A `streamlit run app.py` server on loopback for the browser timings: started, checked healthy, stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from outcomes.paths import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run app.py` on 127.0.0.1 from `root`, showing `db_path` (None: the clone's own database)."""

    def __init__(self, port: int, db_path: Path | None = None, root: Path = ROOT, env: dict | None = None):
        self.port, self.db_path, self.root, self.extra = port, db_path, root, env or {}
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.log = None

    def start(self, timeout: float = 120) -> float:
        """Start the server; seconds until /_stcore/health answers ok."""
        env = dict(os.environ)
        env.pop("OUTCOMES_DB", None)
        if self.db_path is not None:
            env["OUTCOMES_DB"] = str(self.db_path)
        env |= self.extra
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
        cmd += ["--server.port", str(self.port), "--server.address", "127.0.0.1"]
        cmd += ["--browser.gatherUsageStats", "false"]
        t = time.perf_counter()
        # a file, not a pipe: a pipe nobody reads fills up, and a server writing to it then stops
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        while time.perf_counter() - t < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(self.exited())
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return time.perf_counter() - t
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("streamlit did not answer its health check")

    def exited(self) -> str:
        """How the server ended, with the end of its log; "" while it runs."""
        if self.proc is None or self.proc.poll() is None:
            return ""
        self.log.seek(0)
        return f"streamlit exited with status {self.proc.returncode}: {self.log.read()[-500:]}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.log is not None:
            self.log.close()
            self.log = None
