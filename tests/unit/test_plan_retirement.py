"""Retired plans: out of the tenant catalogue, refused for new servers, kept by servers on them;
through the service, the admin API and the CLI (resizes: tests/integration/test_plan_retirement)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from containervps.api.app import create_app
from containervps.cli import app as cli_app
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.errors import InvalidInput, NotFound
from containervps.services.servers import queries
from containervps.services.tenancy import plans, tokens
from tests.unit.fakes import add_server, create, make_tenant


def _names(settings: Settings, *, include_retired: bool = False) -> list[str]:
    return [p.name for p in plans.list_plans(settings, include_retired=include_retired)]


def test_a_retired_plan_leaves_the_catalogue_and_refuses_new_servers(db: Settings) -> None:
    tenant_id = make_tenant(db)
    with session_scope(db) as session:
        add_server(session, tenant_id, "old")  # a nano server from before
    retired = plans.retire_plan(db, name="nano")
    assert retired.retired_at is not None
    assert "nano" not in _names(db) and "nano" in _names(db, include_retired=True)
    with pytest.raises(InvalidInput) as refused:
        create(db, tenant_id, "new", plan="nano")
    assert "plan 'nano' is retired" in refused.value.brief
    assert refused.value.details["field"] == "plan" and refused.value.details["value"] == "nano"
    assert refused.value.resolution == "pick a plan from GET /v1/plans"
    rows, _ = queries.list_servers(db, tenant_id=tenant_id, page=1, per_page=10)
    assert [(s.name, s.plan) for s in rows] == [("old", "nano")]  # kept, not moved

    again = plans.retire_plan(db, name="nano")  # retiring again changes nothing
    assert again.retired_at == retired.retired_at
    assert plans.unretire_plan(db, name="nano").retired_at is None
    assert "nano" in _names(db)
    create(db, tenant_id, "new", plan="nano")  # back in the catalogue
    with pytest.raises(NotFound):
        plans.retire_plan(db, name="no-such-plan")


def test_admin_api_retires_and_tenants_stop_seeing_the_plan(app_env: Settings) -> None:
    tenant_id = make_tenant(app_env)
    _, secret = tokens.create_token(app_env, name="t", tenant_id=tenant_id)
    _, admin_secret = tokens.create_token(app_env, name="ops", is_admin=True)
    t, a = {"Authorization": f"Bearer {secret}"}, {"Authorization": f"Bearer {admin_secret}"}
    client = TestClient(create_app(), raise_server_exceptions=False)

    assert client.post("/v1/admin/plans/micro/actions/retire", headers=t).status_code == 403
    r = client.post("/v1/admin/plans/micro/actions/retire", headers=a)
    assert r.status_code == 200 and r.json()["plan"]["name"] == "micro"
    assert r.json()["plan"]["retired"].endswith("Z")
    tenant_view = {p["name"] for p in client.get("/v1/plans", headers=t).json()["plans"]}
    assert "micro" not in tenant_view and "nano" in tenant_view
    admin_view = {p["name"]: p for p in client.get("/v1/admin/plans", headers=a).json()["plans"]}
    assert admin_view["micro"]["retired"] == r.json()["plan"]["retired"]
    assert admin_view["nano"]["retired"] is None
    missing = client.post("/v1/admin/plans/gone/actions/retire", headers=a)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    r = client.post("/v1/admin/plans/micro/actions/unretire", headers=a)
    assert r.status_code == 200 and r.json()["plan"]["retired"] is None
    assert "micro" in {p["name"] for p in client.get("/v1/plans", headers=t).json()["plans"]}


def test_cli_plan_retire_and_unretire(app_env: Settings) -> None:
    runner = CliRunner()

    def listed() -> dict[str, str | None]:
        out = runner.invoke(cli_app, ["plan", "list", "--json"])
        assert out.exit_code == 0, out.output
        return {p["name"]: p["retired"] for p in json.loads(out.stdout)}

    out = runner.invoke(cli_app, ["plan", "retire", "small"])
    assert out.exit_code == 0 and "plan small retired" in out.stdout
    assert listed()["small"] is not None and "small" not in _names(app_env)
    out = runner.invoke(cli_app, ["plan", "unretire", "small"])
    assert out.exit_code == 0 and listed()["small"] is None
    out = runner.invoke(cli_app, ["plan", "retire", "no-such-plan"])
    assert out.exit_code == 1 and "plan 'no-such-plan' not found" in out.stderr
