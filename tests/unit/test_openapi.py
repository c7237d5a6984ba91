"""The OpenAPI document matches the wire: response models, the real error body on every error
status a route can answer, bearer auth, the console's handshake; and answers that need no LXD
checked against it (tests/integration/test_openapi_conformance.py checks the rest)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient

from containervps.api.app import create_app
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.services.tenancy import tokens
from tests.openapi_support import Conformance, assert_nothing_dropped, raw_answers
from tests.unit.fakes import add_server, make_tenant

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
def doc(app_env: Settings) -> dict[str, Any]:
    return create_app().openapi()


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def test_errors_answer_the_error_body_and_fastapis_422_body_is_gone(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in json.dumps(doc)
    assert set(doc["components"]["schemas"]["ErrorBody"]["required"]) == {"error"}
    for method, path, op in _operations(doc):
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                assert answer["content"]["application/json"]["schema"] == ERROR_REF, (
                    method,
                    path,
                    status,
                )


def test_every_answer_with_a_body_has_a_named_schema(doc: dict[str, Any]) -> None:
    for method, path, op in _operations(doc):
        for status, answer in op["responses"].items():
            if status in {"101", "204"}:
                assert "content" not in answer, (method, path, status)
                continue
            schema = answer["content"]["application/json"]["schema"]
            assert schema.get("$ref", "").startswith("#/components/schemas/"), (method, path)


def test_routes_document_the_errors_their_dependencies_imply(doc: dict[str, Any]) -> None:
    def statuses(method: str, path: str) -> set[str]:
        return {s for s in doc["paths"][path][method]["responses"] if int(s) >= 400}

    assert statuses("post", "/v1/servers") == {
        *("400", "401", "403", "409", "413", "422", "429", "502", "503")
    }
    assert statuses("get", "/v1/servers/{server_id}") == {"401", "403", "404", "422", "429", "503"}
    assert statuses("get", "/v1/plans") == {"401", "429", "503"}  # any token, nothing to validate
    assert statuses("get", "/v1/images") == {"401", "429", "502", "503"}  # LXD answers it
    assert statuses("get", "/healthz") == set()
    assert statuses("post", "/v1/admin/plans/{name}/actions/retire") >= {"403", "404", "413"}
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer", "description": "An API token"}
    for method, path, op in _operations(doc):
        names = {p["name"].lower() for p in op.get("parameters", [])}
        assert "authorization" not in names, (method, path)  # a security scheme, not a field
        assert (op.get("security") == [{"bearerAuth": []}]) == path.startswith("/v1/")


def test_console_handshake_is_documented_and_a_plain_get_answers_426(
    app_env: Settings, doc: dict[str, Any]
) -> None:
    op = doc["paths"]["/v1/servers/{server_id}/console"]["get"]
    assert {"101", "426"} <= set(op["responses"]) and "Upgrade: websocket" in op["description"]
    tenant_id = make_tenant(app_env)
    _, secret = tokens.create_token(app_env, name="t", tenant_id=tenant_id)
    client = TestClient(create_app(), raise_server_exceptions=False)
    r = Conformance(doc).check(
        client.get("/v1/servers/1/console", headers={"Authorization": f"Bearer {secret}"})
    )
    assert r.status_code == 426 and r.json()["error"]["code"] == "upgrade_required"
    assert r.headers["Upgrade"] == "websocket"


def _public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode() + " t@x"


def test_answers_without_lxd_match_the_document(
    app_env: Settings, doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id = make_tenant(app_env)
    with session_scope(app_env) as session:
        add_server(session, tenant_id, "web")
    _, secret = tokens.create_token(app_env, name="t", tenant_id=tenant_id)
    _, admin_secret = tokens.create_token(app_env, name="ops", is_admin=True)
    t, a = {"Authorization": f"Bearer {secret}"}, {"Authorization": f"Bearer {admin_secret}"}
    client = TestClient(create_app(), raise_server_exceptions=False)
    check = Conformance(doc)
    with raw_answers(monkeypatch) as pairs:
        assert check.check(client.get("/healthz")).status_code == 200
        assert check.check(client.get("/v1/plans")).status_code == 401
        assert check.check(client.get("/v1/limits", headers=a)).status_code == 403
        limits = check.check(client.get("/v1/limits", headers=t)).json()["limits"]
        assert limits["servers"] == {"max": 3, "used": 1}
        plans = check.check(client.get("/v1/plans", headers=t)).json()["plans"]
        assert plans[0]["name"] == "nano" and plans[0]["retired"] is None

        key = {"name": "laptop", "public_key": _public_key()}
        made = check.check(client.post("/v1/ssh_keys", json=key, headers=t))
        assert made.status_code == 201
        assert check.check(client.post("/v1/ssh_keys", json=key, headers=t)).status_code == 409
        as_json = {**t, "Content-Type": "application/json"}
        bad_json = client.post("/v1/ssh_keys", content=b"{", headers=as_json)
        assert check.check(bad_json).status_code == 400
        assert check.check(client.post("/v1/ssh_keys", json={}, headers=t)).status_code == 422
        big = {"name": "x", "public_key": "a" * (app_env.api_max_body_bytes + 1)}
        assert check.check(client.post("/v1/ssh_keys", json=big, headers=t)).status_code == 413
        key_id = made.json()["ssh_key"]["id"]
        assert check.check(client.get("/v1/ssh_keys", headers=t)).status_code == 200
        assert check.check(client.get(f"/v1/ssh_keys/{key_id}", headers=t)).status_code == 200
        assert check.check(client.get("/v1/ssh_keys/999", headers=t)).status_code == 404
        assert check.check(client.get("/v1/ssh_keys/abc", headers=t)).status_code == 422
        assert check.check(client.delete(f"/v1/ssh_keys/{key_id}", headers=t)).status_code == 204

        listed = check.check(client.get("/v1/servers", headers=t)).json()
        assert listed["meta"]["pagination"]["total_entries"] == 1
        server_id = listed["servers"][0]["id"]
        assert check.check(client.get(f"/v1/servers/{server_id}", headers=t)).status_code == 200
        for tail in ("actions", "metrics", "snapshots"):
            r = client.get(f"/v1/servers/{server_id}/{tail}", headers=t)
            assert check.check(r).status_code == 200, r.text
        protect = {"delete": True}
        r = client.post(
            f"/v1/servers/{server_id}/actions/change_protection", json=protect, headers=t
        )
        assert check.check(r).json()["server"]["protection"]["delete"] is True
        assert check.check(client.get("/v1/servers?page=0", headers=t)).status_code == 422
        assert check.check(client.get("/v1/actions", headers=t)).status_code == 200
        assert check.check(client.get("/v1/actions/999", headers=t)).status_code == 404
        assert check.check(client.get("/v1/usage", headers=t)).status_code == 200
        assert check.check(client.get("/v1/usage?month=13", headers=t)).status_code == 422

        assert check.check(client.get("/v1/admin/tenants", headers=a)).status_code == 200
        assert check.check(client.get(f"/v1/admin/tenants/{tenant_id}", headers=a)).is_success
        r = client.post(f"/v1/admin/tenants/{tenant_id}/tokens", json={"name": "ci"}, headers=a)
        token = check.check(r).json()["token"]
        assert token["secret"]
        revoked = check.check(client.delete(f"/v1/admin/tokens/{token['id']}", headers=a))
        assert "secret" not in revoked.json()["token"] and revoked.json()["token"]["revoked"]
        assert check.check(client.get("/v1/admin/plans", headers=a)).status_code == 200
        assert check.check(client.get("/v1/admin/servers", headers=a)).status_code == 200
        r = client.post("/v1/admin/plans/nope/actions/retire", headers=a)
        assert check.check(r).status_code == 404
    assert_nothing_dropped(pairs)
    assert len(check.seen) >= 30  # distinct (method, operation, status)
