"""`bench api` on the real LXD: both paths create real servers, and nothing is left behind."""

from __future__ import annotations

import pytest

from containervps.bench.api_bench import run_api_bench
from containervps.config import Settings
from containervps.lxd import Lxd

pytestmark = pytest.mark.usefixtures("cp_settings")


def test_small_api_bench_measures_both_paths_and_cleans_up(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    prefix = cp_settings.tenant_project_prefix
    pools_before = {p.name for p in ready_host.host.list_pools()}
    projects_before = set(ready_host.host.list_projects())
    result = run_api_bench(
        cp_settings, ready_host, creates=2, concurrent=2, list_rows=50, list_samples=10
    )
    assert 0 < result.direct_p50_s <= result.direct_p95_s
    assert 0 < result.api_p50_s <= result.api_p95_s
    assert result.api_concurrent_total_s > 0 and result.direct_concurrent_total_s > 0
    assert 0 < result.list_p50_ms <= result.list_p99_ms
    # Its tenant project and every disk pool either path made are gone.
    assert set(ready_host.host.list_projects()) - projects_before == set()
    left = {p.name for p in ready_host.host.list_pools()} - pools_before
    assert not [p for p in left if p.startswith(prefix)], left
