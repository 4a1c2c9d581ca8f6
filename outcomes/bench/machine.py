"""The machine a benchmark ran on: cores, memory, CPU model, versions, load average; and small units."""

from __future__ import annotations

import os
import platform
import resource
import shutil
import subprocess
from pathlib import Path


def machine() -> dict:
    """Cores, memory, CPU model, versions and the load average now."""
    import duckdb
    import pandas
    import pyarrow
    import streamlit

    cpu = cpu_model()
    mem = next(
        (int(line.split()[1]) // 1024 for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal:")),
        None,
    )
    return {
        "cores": os.cpu_count(),
        "memory_mb": mem,
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "polars": _version("polars"),
        "streamlit": streamlit.__version__,
        "load_average": load_average(),
    }


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def mb(kilobytes: int) -> float:
    return round(kilobytes / 1024, 1)  # ru_maxrss is in kilobytes on Linux


def cpu_model() -> str:
    """The CPU model: lscpu's "Model name", else /proc/cpuinfo's, else what platform knows."""
    if shutil.which("lscpu"):
        try:
            text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        for line in text.splitlines():
            if line.strip().startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or platform.machine(),
    )


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_seconds() -> float:
    """User and system CPU time of this process so far, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
