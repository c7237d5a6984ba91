"""Egress shaped by the platform, the transfer allowance acted on, and usage samples at NIC
boundaries, on the real LXD: rates are measured from inside the VPS to a listener on the
bridge's gateway address (this project's own bridge)."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from containervps.api.app import create_app
from containervps.config import Settings, get_settings
from containervps.db.engine import session_scope
from containervps.db.models import Server, UsageSample
from containervps.errors import ContainerVpsError
from containervps.lxd import Lxd
from containervps.services.host.scratch_probes import measure_upload
from containervps.services.metering import allowance, usage
from containervps.services.reconcile import Reconciler
from containervps.services.servers import addresses, egress, egress_shaping
from containervps.shell import run
from tests.integration.api_support import (
    TEST_ENV,
    admin_headers,
    make_tenant,
    small_plan,
    wait_action,
)

THROTTLE_MBIT = 5
PLAN_MBIT = 50  # the figure: a 50 Mbit/s plan uploads at 45-55 Mbit/s
RESIZED_MBIT = 20
LOW, HIGH = 0.85, 1.12  # measured rate / limit accepted (TCP overhead, HTB burst)


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[ThreadingHTTPServer]:
    """A loopback HTTP server recording the JSON bodies POSTed to it (``_Webhook.received``)."""
    _Webhook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def cp_settings(
    settings: Settings, ready_host: Lxd, webhook: ThreadingHTTPServer
) -> Iterator[Settings]:
    """The integration settings, no periodic sampling (the tests sample), a throttle rate
    and the loopback webhook."""
    mp = pytest.MonkeyPatch()
    for key, value in TEST_ENV.items():
        mp.setenv(key, value)
    mp.setenv("CONTAINERVPS_USAGE_SAMPLE_INTERVAL", "0")
    mp.setenv("CONTAINERVPS_TRANSFER_THROTTLE_MBIT", str(THROTTLE_MBIT))
    port = webhook.server_address[1]
    mp.setenv("CONTAINERVPS_TRANSFER_WEBHOOK_URL", f"http://127.0.0.1:{port}/hook")
    get_settings.cache_clear()
    yield get_settings()
    mp.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def client(cp_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def _bridge_addresses_in_use() -> set[str]:
    """IPv4 addresses LXD holds on any instance (every project), static or leased."""
    listing = json.loads(run(["lxc", "list", "--all-projects", "--format", "json"], what="list"))
    used = set()
    for inst in listing:
        for device in (inst.get("expanded_devices") or {}).values():
            if device.get("ipv4.address"):
                used.add(device["ipv4.address"])
        for nic in ((inst.get("state") or {}).get("network") or {}).values():
            used.update(a["address"] for a in nic.get("addresses", []) if a["family"] == "inet")
    return used


@pytest.fixture(autouse=True)
def _skip_addresses_other_databases_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other platform databases (the operator's, other test runs) share this host's bridge and
    number their servers' addresses on their own: this module's servers skip theirs."""
    held = addresses.held_by_live

    def held_here_or_elsewhere(session: Any, column: Any) -> set[str]:
        return set(held(session, column)) | _bridge_addresses_in_use()

    monkeypatch.setattr(addresses, "held_by_live", held_here_or_elsewhere)


@pytest.fixture
def servers(cp_settings: Settings) -> Iterator[list[int]]:
    """Server ids a test made: their IFBs are removed even if the test fails midway."""
    made: list[int] = []
    yield made
    with session_scope(cp_settings) as session:
        rows = [session.get(Server, sid) for sid in made]
    for row in rows:
        if row is not None:
            egress.release(row)


def _plan(client: TestClient, settings: Settings, *, mbit: int, transfer_gib: int) -> str:
    name = f"eg{mbit}-{secrets.token_hex(3)}"
    body = {**small_plan(name), "net_egress_mbit": mbit, "transfer_gib": transfer_gib}
    r = client.post("/v1/admin/plans", json=body, headers=admin_headers(settings))
    assert r.status_code == 201, r.text
    return name


def _create(client: TestClient, h: dict[str, str], plan: str, made: list[int]) -> int:
    body = {"name": f"eg-{secrets.token_hex(3)}", "plan": plan, "image": "busybox"}
    r = client.post("/v1/servers", json=body, headers=h)
    assert r.status_code == 202, r.text
    made.append(r.json()["server"]["id"])
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    return int(r.json()["server"]["id"])


def _act(client: TestClient, h: dict[str, str], sid: int, verb: str, **body: Any) -> None:
    r = client.post(f"/v1/servers/{sid}/actions/{verb}", json=body, headers=h)
    assert r.status_code in (201, 202), r.text
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"


def _row(settings: Settings, sid: int) -> Server:
    with session_scope(settings) as session:
        row = session.get(Server, sid)
        assert row is not None
        return row


def _veth(lxd: Lxd, row: Server) -> str:
    inst = lxd.instances.get(name=row.lxd_name, project=row.lxd_project)
    return inst.config["volatile.eth0.host_name"]


def _upload(settings: Settings, lxd: Lxd, row: Server, *, mib: int) -> float:
    gateway = settings.bridge_subnet.split("/")[0]
    return measure_upload(
        lxd, name=row.lxd_name, project=row.lxd_project, address=gateway, size=mib << 20
    )


def _assert_rate(measured: float, limit: int, what: str) -> None:
    print(f"{what}: {measured:.1f} Mbit/s (limit {limit})")
    assert limit * LOW <= measured <= limit * HIGH, f"{what}: {measured:.1f} vs {limit}"


def _ifb_exists(row: Server) -> bool:
    return egress.ifb_of(row) in egress_shaping.ifbs()


def test_egress_shaped_kept_repaired_resized_and_removed(
    client: TestClient, cp_settings: Settings, ready_host: Lxd, servers: list[int]
) -> None:
    lxd = ready_host
    tenant = make_tenant(cp_settings, lxd, "egress")
    h = tenant.headers
    plan = _plan(client, cp_settings, mbit=PLAN_MBIT, transfer_gib=100)
    sid = _create(client, h, plan, servers)
    shown = client.get(f"/v1/servers/{sid}", headers=h).json()["server"]["limits"]["net_egress"]
    assert shown["enforced"] is True and shown["value"] == PLAN_MBIT
    assert shown["mechanism"] == "platform" and "LXD" in shown["reason"]
    row = _row(cp_settings, sid)
    veth = _veth(lxd, row)
    assert egress_shaping.shaping(ifb=egress.ifb_of(row), veth=veth) == egress_shaping.Shaping(
        PLAN_MBIT, True
    )
    _assert_rate(_upload(cp_settings, lxd, row, mib=16), PLAN_MBIT, "after create")

    # Without the redirect the VPS uploads at line rate; the reconciler puts it back.
    egress_shaping.remove(ifb=egress.ifb_of(row), veth=veth)
    unshaped = _upload(cp_settings, lxd, row, mib=64)
    print(f"unshaped: {unshaped:.1f} Mbit/s")
    assert unshaped > PLAN_MBIT * 3
    findings = Reconciler(cp_settings, lxd).run()
    assert any(f.kind == "egress" and f.target == f"server:{sid}" for f in findings)
    _assert_rate(_upload(cp_settings, lxd, row, mib=16), PLAN_MBIT, "repaired by the reconciler")

    # A reboot through the API: a new veth, shaped before the action ends.
    _act(client, h, sid, "reboot")
    assert _veth(lxd, row) != veth
    _assert_rate(_upload(cp_settings, lxd, row, mib=16), PLAN_MBIT, "after API reboot")

    # A reboot from inside the guest: the reconciler's pass shapes the new veth.
    before = _veth(lxd, row)
    with contextlib.suppress(ContainerVpsError):  # the exec may end with the container
        lxd.instances.exec(
            name=row.lxd_name, project=row.lxd_project, command=["reboot"], timeout=10
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        inst = lxd.instances.get(name=row.lxd_name, project=row.lxd_project)
        now = inst.config.get("volatile.eth0.host_name")
        if inst.status == "Running" and now and now != before:
            break
        time.sleep(0.5)
    new = _veth(lxd, row)
    assert new != before
    assert egress_shaping.shaping(ifb=egress.ifb_of(row), veth=new).redirected is False
    Reconciler(cp_settings, lxd).run()
    assert egress_shaping.shaping(ifb=egress.ifb_of(row), veth=new).redirected is True
    _assert_rate(_upload(cp_settings, lxd, row, mib=16), PLAN_MBIT, "after guest reboot")

    # A resize to a plan with another egress rate (LXD resets the veth's qdiscs on the way).
    smaller = _plan(client, cp_settings, mbit=RESIZED_MBIT, transfer_gib=100)
    _act(client, h, sid, "resize", plan=smaller)
    _assert_rate(_upload(cp_settings, lxd, row, mib=8), RESIZED_MBIT, "after resize")

    # Power off: the IFB goes with the veth; power on: it is back.
    _act(client, h, sid, "poweroff")
    assert not _ifb_exists(row)
    _act(client, h, sid, "poweron")
    _assert_rate(_upload(cp_settings, lxd, row, mib=8), RESIZED_MBIT, "after power on")

    # Delete: no IFB left behind.
    r = client.delete(f"/v1/servers/{sid}", headers=h)
    assert r.status_code == 202, r.text
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    assert not _ifb_exists(row)
    assert egress.ifb_of(row) not in egress_shaping.ifbs()


def _seed(settings: Settings, row: Server, tx_bytes: int) -> None:
    """Usage counted as if sent earlier this month: a sample right after the newest one, with
    its counters (so the next sample's growth is measured as before) and ``tx_bytes`` growth."""
    with session_scope(settings, immediate=True) as session:
        latest = session.exec(
            select(UsageSample)
            .where(UsageSample.server_id == row.id)
            .order_by(col(UsageSample.at).desc())
        ).first()
        assert latest is not None
        session.add(
            UsageSample(
                server_id=latest.server_id,
                tenant_id=latest.tenant_id,
                at=latest.at + timedelta(microseconds=1),
                cpu_seconds=latest.cpu_seconds,
                memory_bytes=latest.memory_bytes,
                disk_bytes=latest.disk_bytes,
                net_rx_bytes=latest.net_rx_bytes,
                net_tx_bytes=latest.net_tx_bytes,
                tx_delta=tx_bytes,
            )
        )


def _types(crossings: list[allowance.Crossing]) -> list[str]:
    return sorted(c.type for c in crossings)


def _rate(row: Server, lxd: Lxd) -> int | None:
    return egress_shaping.shaping(ifb=egress.ifb_of(row), veth=_veth(lxd, row)).mbit


def test_transfer_allowance_events_throttle_month_turn_and_unthrottle(
    client: TestClient,
    cp_settings: Settings,
    ready_host: Lxd,
    servers: list[int],
    webhook: ThreadingHTTPServer,
) -> None:
    lxd = ready_host
    tenant = make_tenant(cp_settings, lxd, "transfer")
    h = tenant.headers
    plan = _plan(client, cp_settings, mbit=PLAN_MBIT, transfer_gib=1)
    sid = _create(client, h, plan, servers)
    row = _row(cp_settings, sid)
    limits = client.get(f"/v1/servers/{sid}", headers=h).json()["server"]["limits"]
    assert limits["transfer"]["enforced"] is True
    assert limits["transfer"]["throttle_mbit"] == THROTTLE_MBIT
    allowance_bytes = 2**30
    received = _Webhook.received
    received.clear()

    # 79.5% used before; 8 MiB of real upload takes the month past 80%.
    _seed(cp_settings, row, int(allowance_bytes * 0.795))
    assert usage.sample_pass(cp_settings, lxd)[1] == []
    _upload(cp_settings, lxd, row, mib=8)
    _, crossings = usage.sample_pass(cp_settings, lxd)
    assert _types(crossings) == ["server.transfer_80"]
    assert crossings[0].server_id == sid and crossings[0].allowance_bytes == allowance_bytes
    assert [b["event"]["type"] for b in received] == ["server.transfer_80"]
    assert received[0]["event"]["server_id"] == sid
    assert usage.sample_pass(cp_settings, lxd)[1] == []  # told once

    # 99.5%, then real upload past 100%: told, and throttled.
    _seed(cp_settings, row, int(allowance_bytes * 0.2))
    _upload(cp_settings, lxd, row, mib=8)
    _, crossings = usage.sample_pass(cp_settings, lxd)
    assert _types(crossings) == ["server.transfer_exceeded", "server.transfer_throttled"]
    assert [b["event"]["type"] for b in received][1:] == [
        "server.transfer_exceeded",
        "server.transfer_throttled",
    ]
    assert _rate(row, lxd) == THROTTLE_MBIT
    _assert_rate(_upload(cp_settings, lxd, row, mib=3), THROTTLE_MBIT, "throttled")
    events = client.get("/v1/events", params={"server_id": sid}, headers=h).json()["events"]
    assert {e["type"] for e in events} >= {
        "server.transfer_80",
        "server.transfer_exceeded",
        "server.transfer_throttled",
    }
    assert usage.sample_pass(cp_settings, lxd)[1] == []

    # A reboot keeps the throttle (the new veth gets the throttled rate).
    _act(client, h, sid, "reboot")
    assert _rate(row, lxd) == THROTTLE_MBIT

    # The month turns: the pass restores the plan's rate; this month the reconciler holds it.
    next_month = (allowance.month_start(datetime.now(UTC)) + timedelta(days=32)).replace(day=1)
    assert allowance.check_allowances(cp_settings, lxd, now=next_month) == []
    assert _rate(row, lxd) == PLAN_MBIT
    _assert_rate(_upload(cp_settings, lxd, row, mib=16), PLAN_MBIT, "next month")
    Reconciler(cp_settings, lxd).run()
    assert _rate(row, lxd) == THROTTLE_MBIT

    # The operator lifts it (admin API): the plan's rate, not throttled again this month.
    admin = admin_headers(cp_settings)
    r = client.post(f"/v1/admin/servers/{sid}/actions/unthrottle", json={}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["event"]["type"] == "server.transfer_unthrottled"
    assert _rate(row, lxd) == PLAN_MBIT
    assert usage.sample_pass(cp_settings, lxd)[1] == []
    assert _rate(row, lxd) == PLAN_MBIT
    assert received[-1]["event"]["type"] == "server.transfer_unthrottled"

    # A reset counts again from now: nothing used yet; a full allowance more throttles again.
    r = client.post(
        f"/v1/admin/servers/{sid}/actions/unthrottle", json={"reset": True}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert usage.sample_pass(cp_settings, lxd)[1] == []
    _seed(cp_settings, row, allowance_bytes)
    _, crossings = usage.sample_pass(cp_settings, lxd)
    assert _types(crossings) == [
        "server.transfer_80",
        "server.transfer_exceeded",
        "server.transfer_throttled",
    ]
    assert _rate(row, lxd) == THROTTLE_MBIT
    r = client.post(
        f"/v1/admin/servers/{sid}/actions/unthrottle", json={}, headers=h
    )  # not the tenant's to lift
    assert r.status_code in (401, 403), r.text


def test_bytes_sent_right_after_create_and_just_before_reboot_and_delete_are_counted(
    client: TestClient, cp_settings: Settings, ready_host: Lxd, servers: list[int]
) -> None:
    lxd = ready_host
    tenant = make_tenant(cp_settings, lxd, "boundary")
    h = tenant.headers
    plan = _plan(client, cp_settings, mbit=PLAN_MBIT, transfer_gib=100)
    sid = _create(client, h, plan, servers)
    row = _row(cp_settings, sid)
    month = datetime.now(UTC).strftime("%Y-%m")
    sent = 8 << 20

    def counted() -> int:
        rows = usage.monthly_usage(cp_settings, tenant_id=tenant.id, month=month)
        return sum(t.net_tx_bytes for s, t in rows if s.id == sid)

    base = counted()  # boot traffic, counted by the sample taken right after the start
    _upload(cp_settings, lxd, row, mib=8)  # right after create, no sample since
    _act(client, h, sid, "reboot")  # sampled just before the NIC went away
    first = counted() - base
    print(f"sent {sent} B before reboot; counted {first} B ({first / sent - 1:+.2%})")
    assert sent <= first <= sent * 1.08  # frame and TCP/IP headers on top of the payload

    _upload(cp_settings, lxd, row, mib=8)
    r = client.delete(f"/v1/servers/{sid}", headers=h)
    assert r.status_code == 202, r.text
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    second = counted() - base - first
    print(f"sent {sent} B before delete; counted {second} B ({second / sent - 1:+.2%})")
    assert sent <= second <= sent * 1.08
