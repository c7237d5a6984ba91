"""Quota race: 30 concurrent creates against a quota of 3 give exactly 3 servers."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd import Lxd
from containervps.schemas.quota import QuotaUpdate
from tests.integration.api_support import ApiProcess, make_tenant, tenant_instances, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

ATTEMPTS = 30
QUOTA = 3


def test_thirty_concurrent_creates_against_quota_three(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    quota = QuotaUpdate(
        max_servers=QUOTA, max_vcpus=8, max_memory_mib=8192, max_disk_gib=100, max_processes=5000
    )
    tenant = make_tenant(cp_settings, ready_host, "race", quota=quota)
    api = ApiProcess(cp_settings).start()
    try:
        with httpx.Client(base_url=api.url, headers=tenant.headers, timeout=60) as http:

            def create(i: int) -> httpx.Response:
                return http.post(
                    "/v1/servers", json={"name": f"race-{i}", "plan": "nano", "image": "busybox"}
                )

            with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
                answers = list(pool.map(create, range(ATTEMPTS)))
            codes = Counter(r.status_code for r in answers)
            assert codes == {202: QUOTA, 403: ATTEMPTS - QUOTA}, codes
            refused = [r.json()["error"] for r in answers if r.status_code == 403]
            assert {e["code"] for e in refused} == {"resource_limit_exceeded"}
            assert {e["details"]["limit"] for e in refused} == {"servers"}
            for r in answers:
                if r.status_code == 202:
                    assert wait_action(http, r.json()["action"]["id"], {})["status"] == "success"
            assert http.get("/v1/limits").json()["limits"]["servers"] == {
                "max": QUOTA,
                "used": QUOTA,
            }
    finally:
        api.stop()
    with session_scope(cp_settings) as session:
        live = session.exec(
            select(Server).where(Server.tenant_id == tenant.id, col(Server.deleted_at).is_(None))
        ).all()
    assert len(live) == QUOTA and {s.status for s in live} == {"running"}
    instances = tenant_instances(ready_host, tenant)
    assert sorted(i.name for i in instances) == sorted(s.name for s in live)
    assert {i.tag("server_id") for i in instances} == {str(s.id) for s in live}
    # The kernel-side second layer mirrors the same quota.
    project = ready_host.host.get_project(tenant.project)
    assert project is not None and project["limits.instances"] == str(QUOTA)


def test_concurrent_creates_get_unique_valid_idmaps(cp_settings: Settings, ready_host: Lxd) -> None:
    """LXD 5.0.2 hands out duplicate/invalid isolated idmaps to concurrent creates; ours are
    serialised, so every container starts and no two share a map."""
    count = 8
    tenant = make_tenant(cp_settings, ready_host, "idmap")
    quota = QuotaUpdate(
        max_servers=count,
        max_vcpus=count,
        max_memory_mib=8192,
        max_disk_gib=100,
        max_processes=5000,
    )
    from containervps.services.tenancy.tenants import set_quota

    set_quota(cp_settings, ready_host, tenant_id=tenant.id, quota=quota)
    api = ApiProcess(cp_settings).start()
    try:
        with httpx.Client(base_url=api.url, headers=tenant.headers, timeout=60) as http:
            with ThreadPoolExecutor(max_workers=count) as pool:
                answers = list(
                    pool.map(
                        lambda i: http.post(
                            "/v1/servers",
                            json={"name": f"m-{i}", "plan": "nano", "image": "busybox"},
                        ),
                        range(count),
                    )
                )
            assert [r.status_code for r in answers] == [202] * count
            outcomes = [wait_action(http, r.json()["action"]["id"], {}) for r in answers]
            assert [o["status"] for o in outcomes] == ["success"] * count, outcomes
    finally:
        api.stop()
    instances = tenant_instances(ready_host, tenant)
    bases = [int(i.config["volatile.idmap.base"]) for i in instances]
    assert len(set(bases)) == count, bases
    with open("/etc/subuid") as fh:
        start, size = next(
            (int(f[1]), int(f[2])) for f in (ln.strip().split(":") for ln in fh) if f[0] == "root"
        )
    assert all(start <= b and b + 65536 <= start + size for b in bases), (start, bases)
