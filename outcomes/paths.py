"""Where the project's files are: the repository, the query catalog, the data folder and the config folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERY_DIR = ROOT / "queries"
BUILD_DIR = QUERY_DIR / "_build"
DATA_DIR = ROOT / "data"
CONFIG_DIR = ROOT / "config"
DEFAULT_DB = DATA_DIR / "outcomes.duckdb"
