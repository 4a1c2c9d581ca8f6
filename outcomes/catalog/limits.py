"""What an ad-hoc SQL worker may use: DuckDB's memory, threads and spill limits, its address space, the size of
a result; defaults overridden from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

# Address space a worker needs besides DuckDB's memory limit: Python, pandas and DuckDB mapped and started,
# thread stacks (measured: about 0.45 GB after connecting, with one malloc arena), and room for DuckDB's own
# allocations outside its buffer manager.
ADDRESS_HEADROOM = 1 << 30
ENV = {
    "workers": "OUTCOMES_SQL_WORKERS",
    "memory_limit": "OUTCOMES_SQL_MEMORY_LIMIT",
    "threads": "OUTCOMES_SQL_THREADS",
    "max_temp_directory_size": "OUTCOMES_SQL_TEMP_LIMIT",
    "address_space": "OUTCOMES_SQL_ADDRESS_SPACE",
    "max_result_bytes": "OUTCOMES_SQL_MAX_RESULT_BYTES",
}
_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def size_bytes(text: str | int) -> int:
    """'1GB', '512MiB', '2000000' as bytes (DuckDB's units: KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024)."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B?)\s*", str(text).upper())
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"{text!r} is not a size such as 1GB or 512MiB")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


@dataclass(frozen=True)
class Limits:
    """What one worker may use. `address_space` None: the memory limit plus ADDRESS_HEADROOM."""

    memory_limit: str = "1GB"
    threads: int = 1
    max_temp_directory_size: str = "1GB"
    address_space: int | None = None
    max_result_bytes: int = 64 << 20

    @property
    def address_space_bytes(self) -> int:
        return self.address_space or size_bytes(self.memory_limit) + ADDRESS_HEADROOM

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Limits:
        """Defaults overridden by $OUTCOMES_SQL_MEMORY_LIMIT, _THREADS, _TEMP_LIMIT, _ADDRESS_SPACE, _MAX_RESULT_BYTES."""
        given = {}
        for name in ("memory_limit", "max_temp_directory_size"):
            if env.get(ENV[name]):
                size_bytes(env[ENV[name]])  # refuse a bad value here, not in every worker
                given[name] = env[ENV[name]]
        for name in ("threads", "address_space", "max_result_bytes"):
            if env.get(ENV[name]):
                given[name] = int(size_bytes(env[ENV[name]]))
        return cls(**given)

    def duckdb_config(self) -> dict:
        return {
            "memory_limit": self.memory_limit,
            "threads": self.threads,
            "max_temp_directory_size": self.max_temp_directory_size,
        }
