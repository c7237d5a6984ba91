"""Shared test fixtures: settings isolated per test run (own data dir, shared image cache)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from containervps.config import Settings, get_settings


@pytest.fixture(scope="session")
def run_id() -> str:
    """Unique per pytest run; prefixes every LXD object a test creates."""
    return secrets.token_hex(3)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings with a private data dir; LXD host objects and the image cache are shared."""
    data_dir: Path = tmp_path_factory.mktemp("data")
    mp = pytest.MonkeyPatch()
    mp.setenv("CONTAINERVPS_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield get_settings()
    mp.undo()
    get_settings.cache_clear()
