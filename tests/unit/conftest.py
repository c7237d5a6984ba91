"""Unit-test fixtures: a migrated SQLite file in a temporary directory (no LXD)."""

from __future__ import annotations

from pathlib import Path

import pytest

from containervps.config import Settings
from containervps.db import migrate


@pytest.fixture
def db(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path, nic_egress_limit="skip")
    migrate.upgrade(s)
    return s
