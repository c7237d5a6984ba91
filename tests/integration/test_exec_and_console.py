"""Exec with time and output limits, and the interactive console over a websocket."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from containervps.config import Settings
from containervps.lxd import Lxd
from tests.integration.api_support import make_tenant, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")


@pytest.fixture(scope="module")
def box(client: TestClient, cp_settings: Settings, ready_host: Lxd) -> tuple[dict, int]:
    """A running busybox server: (tenant headers, server id)."""
    tenant = make_tenant(cp_settings, ready_host, "exec")
    r = client.post(
        "/v1/servers",
        json={"name": f"box-{secrets.token_hex(3)}", "plan": "nano", "image": "busybox"},
        headers=tenant.headers,
    )
    assert r.status_code == 202, r.text
    assert wait_action(client, r.json()["action"]["id"], tenant.headers)["status"] == "success"
    return tenant.headers, r.json()["server"]["id"]


def _exec(client: TestClient, h: dict, sid: int, body: dict) -> tuple[int, dict]:
    r = client.post(f"/v1/servers/{sid}/exec", json=body, headers=h)
    return r.status_code, r.json()


def test_exec_returns_output_and_exit_code(client: TestClient, box: tuple[dict, int]) -> None:
    h, sid = box
    status, body = _exec(
        client, h, sid, {"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}
    )
    assert status == 200, body
    assert body["exec"]["exit_code"] == 3
    assert body["exec"]["stdout"] == "out\n" and body["exec"]["stderr"] == "err\n"
    status, body = _exec(client, h, sid, {"command": "id -u; nproc"})
    assert status == 200 and body["exec"]["stdout"].split() == ["0", "1"]


def test_exec_past_its_limits_is_killed_and_refused(
    client: TestClient, box: tuple[dict, int], cp_settings: Settings
) -> None:
    h, sid = box
    started = time.monotonic()
    status, body = _exec(
        client, h, sid, {"command": "echo begun; sleep 60 & sleep 60", "timeout": 2}
    )
    assert status == 422, body
    assert body["error"]["code"] == "resource_limit_exceeded"
    assert body["error"]["details"]["limit"] == "exec_seconds"
    assert body["error"]["details"]["stdout"] == "begun\n"
    assert time.monotonic() - started < 10

    status, body = _exec(client, h, sid, {"command": "yes cvps & yes cvps"})
    assert status == 422, body
    assert body["error"]["details"]["limit"] == "exec_output_bytes"
    assert len(body["error"]["details"]["stdout"]) == cp_settings.exec_max_output_bytes

    # Everything it started is gone and the server is as it was.
    status, body = _exec(client, h, sid, {"command": "ps"})
    assert status == 200
    assert "sleep 60" not in body["exec"]["stdout"] and "yes cvps" not in body["exec"]["stdout"]
    bads: list[dict[str, object]] = [
        {"command": []},
        {"command": "true", "timeout": 10_000},
        {"command": 5},
    ]
    for bad in bads:
        status, body = _exec(client, h, sid, bad)
        assert status == 422 and body["error"]["code"] == "invalid_input", body
    shown = client.get(f"/v1/servers/{sid}", headers=h).json()["server"]
    assert shown["status"] == "running"


def test_exec_flooding_output_is_refused_every_time(
    client: TestClient, box: tuple[dict, int], cp_settings: Settings
) -> None:
    h, sid = box
    for attempt in range(10):
        status, body = _exec(client, h, sid, {"command": "yes cvps & yes cvps & yes cvps >&2"})
        assert status == 422, (attempt, body)
        assert body["error"]["details"]["limit"] == "exec_output_bytes", (attempt, body)
        shown = body["error"]["details"]["stdout"] + body["error"]["details"]["stderr"]
        assert len(shown) == cp_settings.exec_max_output_bytes


def test_exec_timeout_kills_what_left_its_process_group(
    client: TestClient, box: tuple[dict, int]
) -> None:
    h, sid = box
    # setsid: a new session; ( ... & ): a double fork, reparented to init; both keep stdout.
    command = "setsid sleep 61 & (sleep 62 &); setsid sh -c '(sleep 63 &)'; sleep 64"
    started = time.monotonic()
    status, body = _exec(client, h, sid, {"command": command, "timeout": 2})
    elapsed = time.monotonic() - started
    assert status == 422 and body["error"]["details"]["limit"] == "exec_seconds", body
    assert elapsed < 2 + 1.5, elapsed
    status, body = _exec(client, h, sid, {"command": "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"})
    assert status == 200, body
    for left in ("sleep 61", "sleep 62", "sleep 63", "sleep 64"):
        assert left not in body["exec"]["stdout"], body["exec"]["stdout"]


def test_exec_scoping_and_power_state(
    client: TestClient, box: tuple[dict, int], cp_settings: Settings, ready_host: Lxd
) -> None:
    h, sid = box
    other = make_tenant(cp_settings, ready_host, "exec-other")
    status, body = _exec(client, other.headers, sid, {"command": "true"})
    assert status == 404 and body["error"]["code"] == "not_found"
    r = client.post(f"/v1/servers/{sid}/actions/poweroff", headers=h)
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    status, body = _exec(client, h, sid, {"command": "true"})
    assert status == 409 and body["error"]["code"] == "conflict"
    r = client.post(f"/v1/servers/{sid}/actions/poweron", headers=h)
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"


def test_console_gives_a_root_shell(client: TestClient, box: tuple[dict, int]) -> None:
    h, sid = box
    with client.websocket_connect(f"/v1/servers/{sid}/console", headers=h) as ws:
        ws.send_text(json.dumps({"resize": {"width": 100, "height": 30}}))
        ws.send_bytes(b"echo cvps-$((6*7)); id -u\n")
        seen = b""
        for _ in range(200):
            seen += ws.receive_bytes()
            if b"cvps-42" in seen.replace(b"cvps-$((6*7))", b""):
                break
        assert b"cvps-42" in seen.replace(b"cvps-$((6*7))", b"")
        ws.send_bytes(b"exit\n")
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(200):
                ws.receive_bytes()
        assert closed.value.code == 1000


def test_console_refuses_a_bad_token(client: TestClient, box: tuple[dict, int]) -> None:
    _, sid = box
    bad = {"Authorization": "Bearer nope"}
    with client.websocket_connect(f"/v1/servers/{sid}/console", headers=bad) as ws:
        error = json.loads(ws.receive_text())["error"]
        assert error["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
        assert closed.value.code == 4401
