"""Numbers and dates are bounded where they enter: past the bound is a 422 naming the field and
the allowed range, never a 500 from SQLite or Python or a 502 with LXD's own message."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from containervps.cli import app as cli_app
from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.schemas.bounds import MAX_ID, MAX_PAGE
from tests.integration.api_support import ApiTenant, admin_headers, make_tenant, small_plan

pytestmark = pytest.mark.usefixtures("cp_settings")

PAST_64_BITS = 2**63  # one past SQLite's largest INTEGER
QUOTA_MAXIMA = {
    "max_servers": 10_000,
    "max_vcpus": 100_000,
    "max_memory_mib": 2**30,
    "max_disk_gib": 2**20,
    "max_processes": 10**9,
    "max_snapshots": 100_000,
}
SMALL_QUOTA = {
    "max_servers": 1,
    "max_vcpus": 1,
    "max_memory_mib": 512,
    "max_disk_gib": 5,
    "max_processes": 500,
    "max_snapshots": 2,
}


@pytest.fixture(scope="module")
def admin(cp_settings: Settings) -> dict[str, str]:
    return admin_headers(cp_settings)


@pytest.fixture(scope="module")
def tenant(cp_settings: Settings, ready_host: Lxd) -> ApiTenant:
    return make_tenant(cp_settings, ready_host, "bounds")


def _refused(r: Any, field: str) -> dict[str, Any]:
    """The 422 body, checked to name ``field``; returns that field's entry."""
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_input" and r.headers["X-Request-Id"]
    named = {f["field"]: f for f in error["details"]["fields"]}
    assert field in named, error
    assert field in error["message"]
    return dict(named[field])


def test_ids_out_of_range_in_every_path_are_422_naming_the_field_and_range(
    client: TestClient, tenant: ApiTenant, admin: dict[str, str]
) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    # Every route the API documents, so a route added later is covered too.
    routes = {p: methods for p, methods in app.openapi()["paths"].items() if "_id}" in p}
    assert len(routes) >= 15  # tenant and admin routes alike
    for bad in (PAST_64_BITS, 10**30, 0, -1):
        for template, methods in routes.items():
            ids = re.findall(r"{(\w+_id)}", template)
            path = re.sub(r"{\w+_id}", str(bad), template).replace("{command}", "poweron")
            headers = admin if path.startswith("/v1/admin/") else tenant.headers
            for method in methods:
                r = client.request(method.upper(), path, headers=headers, json={})
                for name in ids:
                    entry = _refused(r, f"path.{name}")
                    assert (entry["min"], entry["max"]) == (1, MAX_ID), (method, path)
                    assert entry["message"] == f"must be an integer from 1 to {MAX_ID}"
    # The largest id SQLite holds is a valid id: it is simply not there.
    r = client.get(f"/v1/servers/{MAX_ID}", headers=tenant.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_an_id_past_64_bits_in_a_query_is_422(client: TestClient, admin: dict[str, str]) -> None:
    for bad in (PAST_64_BITS, 0):
        r = client.get("/v1/admin/servers", params={"tenant_id": bad}, headers=admin)
        assert _refused(r, "query.tenant_id")["max"] == MAX_ID
    r = client.get("/v1/admin/servers", params={"tenant_id": MAX_ID}, headers=admin)
    assert r.status_code == 200 and r.json()["servers"] == []


def test_huge_page_and_per_page_are_422_with_the_range(
    client: TestClient, tenant: ApiTenant, admin: dict[str, str]
) -> None:
    for path, headers in (("/v1/servers", tenant.headers), ("/v1/admin/servers", admin)):
        for page in (PAST_64_BITS, 92233720368547758, MAX_PAGE + 1, 0):
            entry = _refused(client.get(path, params={"page": page}, headers=headers), "query.page")
            assert (entry["min"], entry["max"]) == (1, MAX_PAGE)
        for per_page in (PAST_64_BITS, 101, 0):
            r = client.get(path, params={"per_page": per_page}, headers=headers)
            assert _refused(r, "query.per_page")["max"] == 100
        last = client.get(path, params={"page": MAX_PAGE, "per_page": 100}, headers=headers)
        assert last.status_code == 200, last.text
        assert last.json()["meta"]["pagination"]["page"] == MAX_PAGE


def test_quota_values_past_the_maxima_are_422_before_lxd_and_the_maxima_fit_lxd(
    client: TestClient, cp_settings: Settings, ready_host: Lxd, admin: dict[str, str]
) -> None:
    quota_tenant = make_tenant(cp_settings, ready_host, "quota")
    url = f"/v1/admin/tenants/{quota_tenant.id}/quota"
    assert client.put(url, json=SMALL_QUOTA, headers=admin).status_code == 200
    for field, maximum in QUOTA_MAXIMA.items():
        for bad in (maximum + 1, 2**70):
            r = client.put(url, json={**SMALL_QUOTA, field: bad}, headers=admin)
            entry = _refused(r, field)
            assert (entry["min"], entry["max"]) == (1, maximum)
    project = ready_host.host.get_project(quota_tenant.project)
    assert project is not None and project["limits.memory"] == "512MiB"  # untouched
    limits = client.get(f"/v1/admin/tenants/{quota_tenant.id}", headers=admin).json()
    assert limits["tenant"]["limits"]["memory_mib"]["max"] == 512

    # A new tenant with such a quota is refused whole: no row, no LXD project.
    name = f"{quota_tenant.name}-big"
    body = {"name": name, "quota": {**SMALL_QUOTA, "max_disk_gib": 2**64}}
    _refused(client.post("/v1/admin/tenants", json=body, headers=admin), "quota.max_disk_gib")
    listed = client.get("/v1/admin/tenants", headers=admin).json()["tenants"]
    assert name not in {t["name"] for t in listed}

    # Every maximum together is a quota LXD accepts and holds.
    r = client.put(url, json=QUOTA_MAXIMA, headers=admin)
    assert r.status_code == 200, r.text
    project = ready_host.host.get_project(quota_tenant.project)
    assert project is not None
    assert project["limits.memory"] == f"{2**30}MiB" and project["limits.disk"] == f"{2**20}GiB"
    assert project["limits.processes"] == str(10**9) and project["limits.cpu"] == "100000"
    assert project["limits.instances"] == "10000"


def test_cli_refuses_quota_values_past_the_maxima(cp_settings: Settings, ready_host: Lxd) -> None:
    cli_tenant = make_tenant(cp_settings, ready_host, "cliquota")
    result = CliRunner().invoke(
        cli_app, ["tenant", "set-quota", cli_tenant.name, "--max-memory-mib", str(2**64)]
    )
    assert result.exit_code == 1, result.output
    assert "max_memory_mib: must be an integer from 1 to 1073741824" in result.output
    project = ready_host.host.get_project(cli_tenant.project)
    assert project is not None
    assert project["limits.memory"] == f"{cp_settings.default_max_memory_mib}MiB"  # untouched


def test_plan_values_past_the_maxima_are_422(
    client: TestClient, admin: dict[str, str], run_id: str
) -> None:
    plan = small_plan(f"bounds{run_id}")
    for field in ("vcpus", "memory_mib", "disk_gib", "disk_read_iops", "max_processes"):
        r = client.post("/v1/admin/plans", json={**plan, field: PAST_64_BITS}, headers=admin)
        assert _refused(r, field)["max"] < PAST_64_BITS
    r = client.get("/v1/admin/plans", headers=admin)
    assert plan["name"] not in {p["name"] for p in r.json()["plans"]}


def test_dates_out_of_range_are_422_naming_the_field(client: TestClient, tenant: ApiTenant) -> None:
    h = tenant.headers
    for month in ("9999-12", "0000-01", "1969-12", "2026-13", "2026-1", "٢٠٢٦-01"):
        entry = _refused(client.get("/v1/usage", params={"month": month}, headers=h), "query.month")
        assert (entry["first"], entry["last"]) == ("1970-01", "9998-12")
    for month in ("1970-01", "9998-12"):
        r = client.get("/v1/usage", params={"month": month}, headers=h)
        assert r.status_code == 200 and r.json()["usage"]["month"] == month
    metrics = f"/v1/servers/{MAX_ID}/metrics"
    for field, value in (
        ("end", "0001-01-01T00:00:00Z"),
        ("start", "0001-01-01T00:00:00Z"),
        ("end", "9999-12-31T23:59:59-23:00"),  # past year 9999 in UTC
        ("start", "0001-01-01T00:30:00+01:00"),  # before year 1 in UTC
        ("end", "1969-12-31T23:59:59Z"),
    ):
        r = client.get(metrics, params={field: value}, headers=h)
        assert "9999-01-01T00:00:00Z" in _refused(r, f"query.{field}")["message"]
    # In range, the dates pass and the (absent) server answers.
    r = client.get(metrics, params={"end": "1970-01-01T00:00:00Z"}, headers=h)
    assert r.status_code == 404, r.text
