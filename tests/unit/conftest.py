"""Unit-test fixtures: a migrated SQLite file in a temporary directory (no LXD)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from containervps.config import Settings, get_settings
from containervps.db import migrate


@pytest.fixture
def db(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path, nic_egress_limit="skip")
    migrate.upgrade(s)
    return s


@pytest.fixture
def app_env(db: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """``db`` as the process settings, for tests that build the API app."""
    monkeypatch.setenv("CONTAINERVPS_DATA_DIR", str(db.data_dir))
    monkeypatch.setenv("CONTAINERVPS_NIC_EGRESS_LIMIT", "skip")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
