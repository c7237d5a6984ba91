"""Capacity planning on the real host: the report predicts how many more servers fit and which
resource binds; admission then admits exactly that many and refuses the next one, naming it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from containervps.api.app import create_app
from containervps.cli import app
from containervps.config import Settings, get_settings
from containervps.db.engine import session_scope
from containervps.lxd import Lxd
from containervps.services.capacity import admission, disk_probe
from tests.integration.api_support import admin_headers, make_tenant, tenant_instances, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

NANO_WRITE_IOPS = 250


@pytest.fixture
def iops_budget(cp_settings: Settings) -> Iterator[Settings]:
    """Settings whose write-IOPS budget leaves room for 2.5 more nano servers (the host disk
    is measured for real by host init)."""
    measured = disk_probe.stored(cp_settings)
    assert measured is not None and measured.write > 0, "host init measures the disk"
    with session_scope(cp_settings) as session:
        held = admission.iops_held(session).write
    ratio = (held + 2.5 * NANO_WRITE_IOPS) / measured.write
    mp = pytest.MonkeyPatch()
    mp.setenv("CONTAINERVPS_IOPS_OVERCOMMIT", repr(ratio))
    mp.setenv("CONTAINERVPS_CPU_OVERCOMMIT", "1000")  # only IOPS may bind here
    get_settings.cache_clear()
    yield get_settings()
    mp.undo()
    get_settings.cache_clear()


def test_the_report_predicts_what_admission_admits(
    iops_budget: Settings, ready_host: Lxd, tmp_path: Path
) -> None:
    tenant = make_tenant(iops_budget, ready_host, "capacity")
    admin = admin_headers(iops_budget)
    made: list[int] = []
    with TestClient(create_app()) as client:
        try:
            report = client.get("/v1/admin/capacity", params={"plan": "nano"}, headers=admin)
            assert report.status_code == 200, report.text
            body = report.json()["capacity"]
            (nano,) = body["plans"]
            assert nano["binding"] == "disk_write_iops" and nano["fits"] == 2, nano
            write = next(r for r in body["resources"] if r["name"] == "disk_write_iops")
            assert write["enforced"] and write["free"] < 3 * NANO_WRITE_IOPS
            assert client.get("/v1/admin/capacity", headers=tenant.headers).status_code == 403
            cli = CliRunner().invoke(
                app, ["capacity", "--plan", "nano", "--json", "--html", str(tmp_path)]
            )
            assert cli.exit_code == 0, cli.output
            (by_cli,) = json.loads(cli.stdout)["plans"]  # the same model (kernel use is live)
            assert (by_cli["fits"], by_cli["binding"]) == (nano["fits"], nano["binding"])
            assert "disk_write_iops" in (tmp_path / "capacity.html").read_text()
            assert (tmp_path / "capacity.png").stat().st_size > 1000

            for i in range(nano["fits"]):
                r = client.post(
                    "/v1/servers",
                    json={"name": f"fit-{i}", "plan": "nano", "image": "busybox"},
                    headers=tenant.headers,
                )
                assert r.status_code == 202, r.text
                made.append(r.json()["server"]["id"])
                action = wait_action(client, r.json()["action"]["id"], tenant.headers)
                assert action["status"] == "success", action["error"]

            refused = client.post(
                "/v1/servers",
                json={"name": "one-too-many", "plan": "nano", "image": "busybox"},
                headers=tenant.headers,
            )
            assert refused.status_code == 409, refused.text
            error = refused.json()["error"]
            assert error["code"] == "resource_unavailable"
            assert error["details"]["resource"] == "disk_iops"
            assert error["details"]["direction"] == "write"
            assert 0 <= error["details"]["free"] < NANO_WRITE_IOPS
            assert "disk_iops" in error["message"]
            names = sorted(i.name for i in tenant_instances(ready_host, tenant))
            assert names == ["fit-0", "fit-1"]  # nothing half-made
            after = client.get("/v1/admin/capacity", params={"plan": "nano"}, headers=admin)
            assert after.json()["capacity"]["plans"][0]["fits"] == 0
        finally:
            for server_id in made:
                r = client.delete(f"/v1/servers/{server_id}", headers=tenant.headers)
                wait_action(client, r.json()["action"]["id"], tenant.headers)
