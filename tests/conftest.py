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
def settings(tmp_path_factory: pytest.TempPathFactory, run_id: str) -> Iterator[Settings]:
    """Settings with a private data dir and tenant project prefix; pool, bridge, profile and
    the image cache are shared with the host's real deployment."""
    data_dir: Path = tmp_path_factory.mktemp("data")
    mp = pytest.MonkeyPatch()
    mp.setenv("CONTAINERVPS_DATA_DIR", str(data_dir))
    mp.setenv("CONTAINERVPS_TENANT_PROJECT_PREFIX", f"cvpstest-{run_id}-t")
    mp.setenv("CONTAINERVPS_SSH_FORWARD_TABLE", f"cvpstest-{run_id}")  # ports of this run's DB
    mp.setenv("CONTAINERVPS_NET_FILTER_TABLE", f"cvpstest-{run_id}-fw")  # this run's firewalls
    get_settings.cache_clear()
    yield get_settings()
    mp.undo()
    get_settings.cache_clear()


INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration need the real daemons: mark them, and only them."""
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is not a pass: fail the run if anything was skipped."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter:
            reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped; skips do not count")
