"""Text is bounded where it enters: valid Unicode (no lone surrogate), no control characters in
names, labels and descriptions, sensible lengths. Every refusal is a 422 whose body is valid
UTF-8, also when it echoes the input, and undecodable bytes in a path or query are no 5xx."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.schemas.bounds import MAX_ID
from tests.integration.api_support import ApiTenant, admin_headers, make_tenant, small_plan

pytestmark = pytest.mark.usefixtures("cp_settings")

LONE = "\\ud800"  # as JSON spells it: the parsed string holds a lone surrogate
SERVER = {"name": "web", "plan": "nano", "image": "busybox"}
PLAN = small_plan("textplan")


@pytest.fixture(scope="module")
def admin(cp_settings: Settings) -> dict[str, str]:
    return admin_headers(cp_settings)


@pytest.fixture(scope="module")
def tenant(cp_settings: Settings, ready_host: Lxd) -> ApiTenant:
    return make_tenant(cp_settings, ready_host, "text")


def _body(fields: dict[str, Any], *, raw: str = "") -> bytes:
    """A JSON body; ``raw`` is spliced in unescaped, so LONE stays a JSON escape."""
    text = json.dumps(fields)
    return (text[:-1] + (", " if fields else "") + raw + "}" if raw else text).encode("ascii")


def _refused(r: Any, field: str) -> str:
    """The 422's message, checked to name ``field`` (a prefix); the body must be UTF-8."""
    assert r.status_code == 422, r.text
    error = json.loads(r.content.decode("utf-8"))["error"]  # strict: no surrogate got out
    assert error["code"] == "invalid_input" and r.headers["X-Request-Id"]
    fields = [f["field"] for f in error["details"]["fields"]]
    assert any(f.startswith(field) for f in fields), error
    return str(error["message"])


def _post(client: TestClient, path: str, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})


def test_lone_surrogates_in_bodies_are_422_with_an_encodable_answer(
    client: TestClient, tenant: ApiTenant, admin: dict[str, str]
) -> None:
    h, sid = tenant.headers, MAX_ID
    cases: list[tuple[str, bytes, dict[str, str], str]] = [
        ("/v1/servers", _body(SERVER, raw=f'"ssh_keys": ["k{LONE}"]'), h, "ssh_keys.0"),
        ("/v1/servers", _body(SERVER, raw=f'"ssh_keys": [7, "{LONE}"]'), h, "ssh_keys.1"),
        (
            "/v1/servers",
            _body({"plan": "nano", "image": "busybox"}, raw=f'"name": "a{LONE}"'),
            h,
            "name",
        ),
        ("/v1/servers", _body(SERVER, raw=f'"labels": {{"k": "v{LONE}"}}'), h, "labels.k"),
        ("/v1/servers", _body(SERVER, raw=f'"labels": {{"k{LONE}": "v"}}'), h, "labels."),
        # Not even a key pydantic can read: the body as a whole is at fault.
        ("/v1/servers", _body(SERVER, raw=f'"x{LONE}": 1'), h, ""),
        (
            "/v1/ssh_keys",
            _body({"public_key": "ssh-ed25519 AAAA"}, raw=f'"name": "k{LONE}"'),
            h,
            "name",
        ),
        (
            "/v1/ssh_keys",
            _body({"name": "k"}, raw=f'"public_key": "ssh-ed25519 A{LONE}"'),
            h,
            "public_key",
        ),
        (f"/v1/servers/{sid}/exec", _body({}, raw=f'"command": "echo {LONE}"'), h, "command"),
        (f"/v1/servers/{sid}/exec", _body({}, raw=f'"command": ["echo", "{LONE}"]'), h, "command"),
        (f"/v1/servers/{sid}/snapshots", _body({}, raw=f'"name": "s{LONE}"'), h, "name"),
        (f"/v1/servers/{sid}/actions/rebuild", _body({}, raw=f'"image": "{LONE}"'), h, "image"),
        (f"/v1/servers/{sid}/actions/resize", _body({}, raw=f'"plan": "{LONE}"'), h, "plan"),
        ("/v1/admin/tenants", _body({}, raw=f'"name": "t{LONE}"'), admin, "name"),
        (
            f"/v1/admin/tenants/{tenant.id}/tokens",
            _body({}, raw=f'"name": "{LONE}"'),
            admin,
            "name",
        ),
        ("/v1/admin/plans", _body(PLAN, raw=f'"description": "d{LONE}"'), admin, "description"),
    ]
    for path, body, headers, field in cases:
        assert "\\ud800" in body.decode("ascii")
        message = _refused(_post(client, path, body, headers), field)
        assert "\ud800" not in message
    # Nothing was made on the way.
    assert client.get("/v1/servers", headers=h).json()["servers"] == []
    assert client.get("/v1/ssh_keys", headers=h).json()["ssh_keys"] == []


def test_control_characters_in_names_labels_and_descriptions_are_422(
    client: TestClient, tenant: ApiTenant, admin: dict[str, str]
) -> None:
    h = tenant.headers
    cases: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
        ("/v1/servers", {**SERVER, "name": "web\x00"}, h, "name"),
        ("/v1/servers", {**SERVER, "name": "web\n"}, h, "name"),
        ("/v1/servers", {**SERVER, "labels": {"k": "v\x1b[2J"}}, h, "labels.k"),
        ("/v1/servers", {**SERVER, "labels": {"k\r": "v"}}, h, "labels."),
        ("/v1/ssh_keys", {"name": "lap\ttop", "public_key": "ssh-ed25519 AAAA"}, h, "name"),
        (f"/v1/servers/{MAX_ID}/snapshots", {"name": "s\x7f"}, h, "name"),
        ("/v1/admin/tenants", {"name": "t\x85"}, admin, "name"),  # C1: NEL
        (f"/v1/admin/tenants/{tenant.id}/tokens", {"name": "ci\x07"}, admin, "name"),
        ("/v1/admin/plans", {**PLAN, "description": "one\x00two"}, admin, "description"),
    ]
    for path, body, headers, field in cases:
        message = _refused(client.post(path, json=body, headers=headers), field)
        assert "control characters" in message
    r = client.get("/v1/servers", params={"label_selector": "k=v\x01"}, headers=h)
    assert "control characters" in _refused(r, "query.label_selector")
    assert client.get("/v1/servers", headers=h).json()["servers"] == []


def test_text_past_sensible_lengths_is_422(
    client: TestClient, tenant: ApiTenant, admin: dict[str, str]
) -> None:
    h = tenant.headers
    cases: list[tuple[str, dict[str, Any], dict[str, str], str]] = [
        ("/v1/servers", {**SERVER, "name": "a" * 64}, h, "name"),
        ("/v1/servers", {**SERVER, "labels": {"k": "v" * 64}}, h, "labels.k"),
        ("/v1/servers", {**SERVER, "labels": {f"k{i}": "v" for i in range(33)}}, h, "labels"),
        ("/v1/servers", {**SERVER, "ssh_keys": list(range(1, 34))}, h, "ssh_keys"),
        ("/v1/admin/plans", {**PLAN, "description": "d" * 256}, admin, "description"),
        (f"/v1/admin/tenants/{tenant.id}/tokens", {"name": "t" * 101}, admin, "name"),
    ]
    for path, body, headers, field in cases:
        _refused(client.post(path, json=body, headers=headers), field)
    r = client.get("/v1/servers", params={"label_selector": "k" * 4097}, headers=h)
    _refused(r, "query.label_selector")
    r = client.get("/v1/servers", params={"name": "n" * 64}, headers=h)
    _refused(r, "query.name")


def test_undecodable_bytes_in_a_path_or_query_are_no_5xx(
    client: TestClient, tenant: ApiTenant
) -> None:
    h = tenant.headers
    bad = "%ED%A0%80"  # a surrogate's UTF-8 bytes: the server decodes them to U+FFFD
    answers = [
        client.get(f"/v1/servers?name={bad}", headers=h),
        client.get(f"/v1/servers?label_selector={bad}", headers=h),
        client.get(f"/v1/servers?status={bad}", headers=h),
        client.get(f"/v1/usage?month={bad}", headers=h),
        client.get(f"/v1/servers/{bad}", headers=h),
        client.post(f"/v1/servers/{bad}/snapshots", json={}, headers=h),
        client.get(f"/v1/servers/1/metrics?end={bad}", headers=h),
    ]
    for r in answers:
        assert r.status_code < 500, r.text
        json.loads(r.content.decode("utf-8"))
    _refused(answers[4], "path.server_id")
    _refused(answers[3], "query.month")


def test_a_lone_surrogate_in_the_asgi_path_is_escaped_not_a_500(
    client: TestClient, tenant: ApiTenant
) -> None:
    """uvicorn never passes one, but another ASGI server may: routing and the audit log of a
    POST must still carry the path."""
    token = tenant.headers["Authorization"].encode()
    answer: list[dict[str, Any]] = []

    async def call() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/servers/\ud800/snapshots",
            "raw_path": b"/v1/servers/%ED%A0%80/snapshots",
            "query_string": b"",
            "headers": [(b"authorization", token), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
        }
        body = [{"type": "http.request", "body": b"{}", "more_body": False}]

        async def receive() -> dict[str, Any]:
            return body.pop(0) if body else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            answer.append(message)

        await client.app(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(call)
    start = next(m for m in answer if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in answer if m["type"] == "http.response.body")
    assert start["status"] == 422, content
    assert json.loads(content.decode("utf-8"))["error"]["details"]["field"] == "path.server_id"
