"""Tenant firewalls, tenant isolation, anti-spoofing and IPv6 on the real bridge: real TCP
connections between VPSs and from the host (busybox ``nc``), through the platform's own
nftables table (a per-run table: tests/conftest.py)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.services.firewalls import enforce
from containervps.services.reconcile import Reconciler
from containervps.services.servers import addresses
from containervps.shell import probe
from tests.integration.api_support import ApiTenant, make_tenant, server_project, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

PORT = 8080
CONNECT_SECONDS = 2


@dataclass(frozen=True)
class Vps:
    tenant: ApiTenant
    id: int
    name: str
    project: str
    ipv4: str
    ipv6: str
    ssh_port: int


def _exec(lxd: Lxd, vps: Vps, command: str, timeout: float = 20) -> tuple[int, str]:
    done = lxd.instances.exec(
        name=vps.name, project=vps.project, command=["sh", "-c", command], timeout=timeout
    )
    return done.exit_code, done.stdout + done.stderr


def _listen(lxd: Lxd, vps: Vps, port: int, answer: str) -> None:
    """A persistent busybox listener answering ``answer`` to every connection."""
    code, out = _exec(lxd, vps, f"nc -ll -p {port} -e echo {answer} >/dev/null 2>&1 &")
    assert code == 0, out


def _from_vps(lxd: Lxd, vps: Vps, address: str, port: int = PORT) -> bool:
    """Whether a TCP connection from ``vps`` gets the listener's answer."""
    _, out = _exec(lxd, vps, f"sleep 1 | nc -w {CONNECT_SECONDS} {address} {port}")
    return "hi-" in out or "ssh-" in out


def _from_host(address: str, port: int = PORT) -> bool:
    return _banner(address, port).startswith((b"hi-", b"ssh-"))


def _ping6(address: str) -> bool:
    return probe(["busybox", "ping", "-6", "-c", "1", "-W", "1", address]).ok


def _banner(address: str, port: int) -> bytes:
    try:
        with socket.create_connection((address, port), timeout=CONNECT_SECONDS) as sock:
            sock.settimeout(CONNECT_SECONDS)
            return sock.recv(64)
    except OSError:
        return b""


def _create(
    client: TestClient,
    tenant: ApiTenant,
    settings: Settings,
    name: str,
    *,
    image: str = "busybox",
    plan: str = "nano",
) -> Vps:
    r = client.post(
        "/v1/servers", json={"name": name, "plan": plan, "image": image}, headers=tenant.headers
    )
    assert r.status_code == 202, r.text
    server = r.json()["server"]
    assert server["public_net"]["ipv4"] and server["public_net"]["ipv6"]  # known before start
    assert wait_action(client, r.json()["action"]["id"], tenant.headers)["status"] == "success"
    return Vps(
        tenant,
        server["id"],
        name,
        server_project(settings, tenant, name),
        server["public_net"]["ipv4"],
        server["public_net"]["ipv6"],
        server["ssh"]["port"],
    )


@pytest.fixture(scope="module")
def fleet(client: TestClient, cp_settings: Settings, ready_host: Lxd) -> Iterator[dict[str, Vps]]:
    """Tenant A's a1 and a2, tenant B's b1, each answering on PORT."""
    a, b = (make_tenant(cp_settings, ready_host, x) for x in ("fw-a", "fw-b"))
    vpss = {
        "a1": _create(client, a, cp_settings, "fwa1"),
        "a2": _create(client, a, cp_settings, "fwa2"),
        "b1": _create(client, b, cp_settings, "fwb1"),
    }
    for key, vps in vpss.items():
        _listen(ready_host, vps, PORT, f"hi-{key}")
    yield vpss
    for vps in vpss.values():
        client.delete(f"/v1/servers/{vps.id}", headers=vps.tenant.headers)


def _wait(check: Any, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def test_each_server_answers_on_its_fixed_ipv6_address(
    fleet: dict[str, Vps], ready_host: Lxd, cp_settings: Settings
) -> None:
    a2 = fleet["a2"]
    prefix = addresses.ipv6_subnet(cp_settings).network
    assert a2.ipv6.startswith(str(prefix.network_address).rstrip(":"))
    nic = ready_host.instances.get(name=a2.name, project=a2.project).devices["eth0"]
    assert nic["hwaddr"] == addresses.mac_of(a2.ipv6)
    assert _wait(lambda: a2.ipv6 in _exec(ready_host, a2, "ip -6 addr show dev eth0")[1])
    print("inside:", _exec(ready_host, a2, "ip -6 addr show dev eth0 scope global")[1].strip())
    assert _wait(lambda: _ping6(a2.ipv6))  # once duplicate address detection is done
    assert _from_host(a2.ipv6)
    # Tenant A's own VPSs reach each other over IPv6 too, tenant B's do not.
    assert _wait(lambda: fleet["a1"].ipv6 in _exec(ready_host, fleet["a1"], "ip -6 addr")[1])
    assert _from_vps(ready_host, fleet["a1"], a2.ipv6)
    assert _wait(lambda: fleet["b1"].ipv6 in _exec(ready_host, fleet["b1"], "ip -6 addr")[1])
    assert not _from_vps(ready_host, fleet["b1"], a2.ipv6)


def test_debian_forms_the_same_ipv6_address_with_systemd_networkd(
    client: TestClient, fleet: dict[str, Vps], ready_host: Lxd, cp_settings: Settings
) -> None:
    tenant = fleet["a1"].tenant
    deb = _create(client, tenant, cp_settings, "fwdeb", image="debian-12", plan="micro")
    try:
        assert _wait(lambda: deb.ipv6 in _exec(ready_host, deb, "ip -6 addr")[1], timeout=60)
        print("debian:", _exec(ready_host, deb, "ip -6 addr show dev eth0 scope global")[1].strip())
        assert _wait(lambda: _ping6(deb.ipv6))  # once duplicate address detection is done
        assert _wait(lambda: _banner(deb.ipv6, 22).startswith(b"SSH-"), timeout=60)  # sshd
    finally:
        r = client.delete(f"/v1/servers/{deb.id}", headers=tenant.headers)
        assert wait_action(client, r.json()["action"]["id"], tenant.headers)["status"] == "success"


def test_tenants_are_isolated_on_the_wire_and_cannot_spoof(
    fleet: dict[str, Vps], ready_host: Lxd, cp_settings: Settings
) -> None:
    a1, a2, b1 = fleet["a1"], fleet["a2"], fleet["b1"]
    assert _from_vps(ready_host, a1, a2.ipv4)  # a tenant's own VPSs reach each other
    assert _from_vps(ready_host, a2, a1.ipv4)
    assert not _from_vps(ready_host, a1, b1.ipv4)  # not another tenant's
    assert not _from_vps(ready_host, b1, a1.ipv4)
    assert all(_from_host(v.ipv4) for v in (a1, a2, b1))  # the host reaches every VPS

    # A second address inside a1: packets from it are dropped at a1's port (LXD's filter).
    spoofed = str(addresses.static_range(cp_settings)[1])  # the static range's last address
    code, out = _exec(ready_host, a1, f"ip addr add {spoofed}/32 dev eth0")
    assert code == 0, out
    try:
        gateway = cp_settings.bridge_subnet.split("/")[0]
        assert _exec(ready_host, a1, f"ping -c 2 -W 2 {gateway}")[0] == 0
        assert _exec(ready_host, a1, f"ping -c 2 -W 2 -I {spoofed} {gateway}")[0] != 0
        # b1's own address as a1's source would dodge the isolation: it is dropped the same way
        assert _exec(ready_host, a1, f"ip addr add {b1.ipv4}/32 dev eth0")[0] == 0
        assert _exec(ready_host, a1, f"ping -c 2 -W 2 -I {b1.ipv4} {a2.ipv4}")[0] != 0
    finally:
        _exec(
            ready_host, a1, f"ip addr del {spoofed}/32 dev eth0; ip addr del {b1.ipv4}/32 dev eth0"
        )


def test_a_firewall_blocks_then_allows_real_connections(
    client: TestClient, fleet: dict[str, Vps], ready_host: Lxd, cp_settings: Settings
) -> None:
    a1, a2, b1 = fleet["a1"], fleet["a2"], fleet["b1"]
    h = a1.tenant.headers
    gateway = cp_settings.bridge_subnet.split("/")[0]
    _listen(ready_host, a1, 22, "ssh-a1")  # what the SSH forward reaches
    for vps in (a1, b1):  # SLAAC done (the first test waited too, when run)
        assert _wait(lambda v=vps: v.ipv6 in _exec(ready_host, v, "ip -6 addr")[1])
    assert _from_host(a1.ipv4) and _from_vps(ready_host, a2, a1.ipv4)

    only_9999 = [
        {"direction": "in", "protocol": "tcp", "port": "9999", "source_ips": ["0.0.0.0/0"]}
    ]
    r = client.post(
        "/v1/firewalls",
        json={
            "name": "web",
            "rules": only_9999,
            "apply_to": [{"type": "label_selector", "label_selector": {"selector": "role=web"}}],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    fw = r.json()["firewall"]
    assert fw["applied_to_servers"] == []
    assert _from_host(a1.ipv4)  # the selector matches nothing yet: no change

    started = time.monotonic()
    r = client.put(f"/v1/servers/{a1.id}", json={"labels": {"role": "web"}}, headers=h)
    assert r.status_code == 200, r.text
    print(f"labels set and table rebuilt in {time.monotonic() - started:.2f} s")
    assert not _from_host(a1.ipv4)  # default deny once a firewall applies
    assert not _from_vps(ready_host, a2, a1.ipv4)
    assert _from_host(cp_settings.ssh_address, a1.ssh_port)  # the SSH forward still gets in
    assert not _from_host(a1.ipv4, 22)  # a direct connection to port 22 does not
    assert _from_host(a2.ipv4)  # its neighbour has no firewall

    allow = [
        {
            "direction": "in",
            "protocol": "tcp",
            "port": "8000-8080",
            "source_ips": [f"{gateway}/32", f"{b1.ipv4}/32", f"{b1.ipv6}/128"],
        }
    ]
    r = client.put(f"/v1/firewalls/{fw['id']}", json={"rules": only_9999 + allow}, headers=h)
    assert r.status_code == 200 and r.json()["firewall"]["applied_to_servers"] == [a1.id]
    assert _from_host(a1.ipv4)
    assert _from_vps(ready_host, b1, a1.ipv4)  # another tenant's VPS, allowed by a rule
    assert not _from_vps(ready_host, a2, a1.ipv4)  # not in the rule's sources
    assert _from_vps(ready_host, b1, a1.ipv6) and not _from_vps(ready_host, a2, a1.ipv6)

    # Outbound: one rule makes outbound default-deny; replies to allowed inbound still leave.
    out = [{"direction": "out", "protocol": "udp", "port": "53", "destination_ips": ["192.0.2.1"]}]
    assert _from_vps(ready_host, a1, a2.ipv4)
    r = client.put(f"/v1/firewalls/{fw['id']}", json={"rules": only_9999 + allow + out}, headers=h)
    assert r.status_code == 200
    assert not _from_vps(ready_host, a1, a2.ipv4)
    assert _from_host(a1.ipv4)

    # A host that lost the table (a reboot): the reconciler rebuilds it from the database.
    table = cp_settings.net_filter_table
    assert probe(["nft", "delete", "table", "inet", table]).ok
    assert _from_vps(ready_host, a2, a1.ipv4)  # nothing enforces it now
    findings = Reconciler(cp_settings, ready_host).run()
    assert any(f.kind == "net_filter" and f.applied for f in findings)
    assert enforce.present(cp_settings)
    assert not _from_vps(ready_host, a2, a1.ipv4)

    assert client.delete(f"/v1/firewalls/{fw['id']}", headers=h).status_code == 204
    assert _from_vps(ready_host, a2, a1.ipv4) and _from_vps(ready_host, a1, a2.ipv4)
    assert not _from_vps(ready_host, b1, a1.ipv4)  # back to the isolation alone
