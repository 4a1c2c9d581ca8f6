"""Steps run in child processes, so that each one's peak memory is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from outcomes.bench.machine import _read, mb
from outcomes.paths import ROOT


def child(code: str, *args: str) -> tuple[dict, float]:
    """Run Python `code` with `args` in a child process: the JSON it prints last, and its own peak RSS in MB."""
    code += "\nprint(json.dumps(out | {'maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))\n"
    proc = subprocess.run(
        [sys.executable, "-c", "import json, resource, sys, time\n" + code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        raise RuntimeError(f"child process failed ({proc.returncode}): {tail}")
    out = _last_json(proc.stdout)
    return out, mb(out.pop("maxrss_kb"))


def _last_json(stdout: str) -> dict:
    """The last JSON object `stdout` ends a line with (DuckDB's progress bar may print before it on the same
    line, or after it)."""
    for line in reversed(stdout.replace("\r", "\n").splitlines()):
        at = line.find('{"')
        if at >= 0:
            try:
                return json.loads(line[at:])
            except ValueError:
                continue
    raise RuntimeError(f"child process printed no result: {stdout[-200:]!r}")


GENERATE = """
from outcomes.ingest.demo import generate
t = time.perf_counter()
rows = generate(sys.argv[1], clients=int(sys.argv[2]), seed=int(sys.argv[3]))
out = {"seconds": time.perf_counter() - t, "rows": rows}
"""

LOAD = """
from outcomes.ingest.loader import load
t, phases = time.perf_counter(), []
r = load(sys.argv[1], sys.argv[2], progress=lambda f, m: phases.append((m, time.perf_counter() - t)))
out = {"seconds": r.seconds, "rows": r.rows, "data_through": str(r.data_through), "phases": phases}
"""


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (the Spark JVM is a child of Python), in KB."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for p in tree:
        for line in _read(f"/proc/{p}/status").splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def child_tree(code: str, *args: str) -> tuple[dict, float]:
    """Like child, but the peak is sampled (every 0.2 s) over the child and every process it starts."""

    code += "\nprint(json.dumps(out))\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import json, sys, time\n" + code, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        tail = [line for line in stderr.strip().splitlines() if line.strip()][-1:] or [""]
        raise RuntimeError(f"child process failed ({proc.returncode}): {tail[0][:300]}")
    return _last_json(stdout), mb(peak[0])
