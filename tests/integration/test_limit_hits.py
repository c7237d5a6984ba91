"""Which limit did I hit, on the real LXD: each counter of GET /v1/servers/{id}/limits/hits
moves when its limit is hit by a fork bomb, a memory hog, a CPU hog, an IOPS hog and a flood.

The fork bomb and the memory hog run in child cgroups the server makes itself (as systemd
does): on cgroup v1 the kernel counts a refused fork and an OOM kill there, not in the server's
top cgroup, so the test also shows the top cgroup's files staying at 0 where they were read
before. Traffic goes only between the host and the VPS on the project's own bridge.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from containervps.cli import app
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.lxd import Lxd
from containervps.services.host.scratch_probes import measure_upload
from containervps.services.metering import usage
from containervps.services.metering.cgroups import keyed, payload
from tests.integration.api_support import admin_headers, make_tenant, small_plan, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

MAX_PROCESSES = 30
WRITE_IOPS = 20
DIRECT_WRITES = 60  # 4 KiB direct writes: about 3 s at WRITE_IOPS
UPLOAD_MIB = 2  # about 1.7 s at the plan's 10 Mbit/s
UDP_PACKETS, UDP_BYTES = 4000, 1400  # 5.6 MB at once into a 10 Mbit/s shaper
SO_SNDBUFFORCE = 32  # Linux's; root may pass net.core.wmem_max
HOG_SECONDS = 3

# 100 tries at most; a try whose fork is refused fails at once. Run in a pids cgroup of its own.
FORK_BOMB = (
    "mkdir -p /tmp/pids && mount -t cgroup -o pids cgroup /tmp/pids && mkdir /tmp/pids/bomb"
    " && echo $$ > /tmp/pids/bomb/cgroup.procs"
    " && for i in $(seq 1 100); do (sleep 2 &) 2>/dev/null; done; echo tried"
)
# 400 MiB through one buffering process, past the plan's 128 MiB, in a memory cgroup of its own.
MEMORY_HOG = (
    "mkdir -p /tmp/mem && mount -t cgroup -o memory cgroup /tmp/mem && mkdir /tmp/mem/hog"
    " && echo $$ > /tmp/mem/hog/cgroup.procs && head -c 419430400 /dev/zero | tail; echo rc=$?"
)
# Two busy threads on the server's one vCPU for HOG_SECONDS.
CPU_HOG = (
    f"(timeout {HOG_SECONDS} sh -c 'while :; do :; done' &);"
    f" timeout {HOG_SECONDS} sh -c 'while :; do :; done'; echo burnt"
)
# The tenant's own CFS quota (a fifth of a core) on a child cgroup, and a hog in it.
CPU_QUOTA_HOG = (
    "mkdir -p /tmp/cpu && mount -t cgroup -o cpu cgroup /tmp/cpu && mkdir /tmp/cpu/capped"
    " && echo 20000 > /tmp/cpu/capped/cpu.cfs_quota_us && echo $$ > /tmp/cpu/capped/cgroup.procs"
    " && timeout 2 sh -c 'while :; do :; done'; echo burnt"
)
IOPS_HOG = f"dd if=/dev/zero of=/root/iops bs=4k count={DIRECT_WRITES} oflag=direct; rm /root/iops"


def _exec(client: TestClient, h: dict[str, str], sid: int, command: str) -> str:
    r = client.post(f"/v1/servers/{sid}/exec", json={"command": command, "timeout": 30}, headers=h)
    assert r.status_code == 200, r.text
    result = r.json()["exec"]
    return str(result["stdout"]) + str(result["stderr"])


def _hits(client: TestClient, h: dict[str, str], sid: int) -> dict[str, Any]:
    r = client.get(f"/v1/servers/{sid}/limits/hits", headers=h)
    assert r.status_code == 200, r.text
    return dict(r.json()["limit_hits"])


def _moved(what: str, before: Any, after: Any) -> None:
    print(f"{what}: {before} -> {after}")
    assert after > before, f"{what} did not move: {before} -> {after}"


def _flood_udp(address: str) -> None:
    """UDP_PACKETS datagrams to the VPS as fast as the host sends them (bounded count). The
    send buffer holds them all: a default one (208 KiB) blocks the sender while the shaper's
    queue (1000 packets) still has room, and nothing would be dropped."""
    payload_ = b"\0" * UDP_BYTES
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 4 * UDP_PACKETS * UDP_BYTES)
        for _ in range(UDP_PACKETS):
            try:
                sock.sendto(payload_, (address, 9))
            except OSError:  # ICMP port unreachable reported back: go on
                continue


def test_each_counter_moves_when_its_limit_is_hit(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    s, lxd = cp_settings, ready_host
    plan = f"hits-{secrets.token_hex(3)}"
    # Reads unhurried: a memory hog at the limit evicts the binaries' pages and reads them
    # again; at the small plan's 100 read IOPS that crawled past the exec's 30 s with no OOM.
    body = {
        **small_plan(plan),
        "max_processes": MAX_PROCESSES,
        "disk_write_iops": WRITE_IOPS,
        "disk_read_iops": 2000,
        "disk_read_mb_s": 200,
    }
    r = client.post("/v1/admin/plans", json=body, headers=admin_headers(s))
    assert r.status_code == 201, r.text
    tenant = make_tenant(s, lxd, "hits")
    h = tenant.headers
    r = client.post(
        "/v1/servers", json={"name": "hits", "plan": plan, "image": "busybox"}, headers=h
    )
    assert r.status_code == 202, r.text
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    sid = int(r.json()["server"]["id"])
    with session_scope(s) as session:
        row = session.get(Server, sid)
        assert row is not None
    cgroup = payload(row.lxd_project, row.lxd_name)

    start = _hits(client, h, sid)
    print("at start:", json.dumps(start))
    assert start["since"] and start["pressure"]["available"], start["pressure"]
    assert start["memory"]["limit_bytes"] == 128 << 20 and not start["memory"]["limit_reached"]
    assert start["pids"]["limit"] == MAX_PROCESSES
    assert start["disk"]["write_iops_limit"] == WRITE_IOPS
    assert start["network"]["egress"]["shaped_by"] == "platform"
    assert start["network"]["ingress"]["shaped_by"] == "lxd"

    # A fork bomb: refused forks counted in the bomb's own cgroup, summed up to the server.
    assert "tried" in _exec(client, h, sid, FORK_BOMB)
    time.sleep(2.5)  # the sleeps it made end
    after = _hits(client, h, sid)
    top = keyed(s.cgroup_root / "pids" / cgroup / "pids.events").get("max", 0)
    _moved("forks refused", start["pids"]["max_events"], after["pids"]["max_events"])
    print(f"  the server's top pids cgroup alone counts {top}")
    assert top == 0

    # A memory hog past the plan, in a child memory cgroup: the OOM kill counts there.
    before = after
    assert "rc=137" in _exec(client, h, sid, MEMORY_HOG)  # killed
    after = _hits(client, h, sid)
    top_kills = keyed(s.cgroup_root / "memory" / cgroup / "memory.oom_control")["oom_kill"]
    _moved("OOM kills", before["memory"]["oom_kills"], after["memory"]["oom_kills"])
    print(f"  the server's top memory cgroup alone counts {top_kills}")
    assert top_kills == 0
    print(f"  failcnt {after['memory']['failcnt']} ({after['memory']['failcnt_reason']})")
    _moved(
        "memory limit reached", before["memory"]["limit_reached"], after["memory"]["limit_reached"]
    )
    _moved(
        "memory pressure (PSI some, usec)",
        before["pressure"]["memory"]["some_usec"],
        after["pressure"]["memory"]["some_usec"],
    )

    # A CPU hog: two busy threads on one vCPU wait for its core; no CFS quota throttles it.
    before = after
    assert "burnt" in _exec(client, h, sid, CPU_HOG)
    after = _hits(client, h, sid)
    _moved("CPU wait (PSI some, usec)", before["cpu"]["wait_usec"], after["cpu"]["wait_usec"])
    print(f"  quota {after['cpu']['quota']}, nr_throttled {after['cpu']['nr_throttled']}")
    assert after["cpu"]["quota"] == "none" and after["cpu"]["nr_throttled"] == 0
    # Where a quota exists (here the tenant's own, on a child cgroup) throttling is counted.
    before = after
    assert "burnt" in _exec(client, h, sid, CPU_QUOTA_HOG)
    after = _hits(client, h, sid)
    _moved("CPU throttled periods", before["cpu"]["nr_throttled"], after["cpu"]["nr_throttled"])
    _moved("CPU throttled usec", before["cpu"]["throttled_usec"], after["cpu"]["throttled_usec"])

    # An IOPS hog: direct 4 KiB writes at the plan's write IOPS.
    before = after
    started = time.monotonic()
    _exec(client, h, sid, IOPS_HOG)
    took = time.monotonic() - started
    after = _hits(client, h, sid)
    print(f"  {DIRECT_WRITES} direct writes at {WRITE_IOPS} iops took {took:.1f} s")
    _moved("disk write ios", before["disk"]["write_ios"], after["disk"]["write_ios"])
    assert after["disk"]["write_ios"] - before["disk"]["write_ios"] >= DIRECT_WRITES
    _moved(
        "disk stall (PSI io some, usec)", before["disk"]["stall_usec"], after["disk"]["stall_usec"]
    )
    assert after["disk"]["throttled_ios"] is None and "no count" in after["disk"]["reason"]

    # A flood each way through the plan's 10 Mbit/s: upload to the bridge gateway, UDP to the VPS.
    before = after
    gateway = s.bridge_subnet.split("/")[0]
    mbit = measure_upload(
        lxd, name=row.lxd_name, project=row.lxd_project, address=gateway, size=UPLOAD_MIB << 20
    )
    assert row.ipv4
    _flood_udp(row.ipv4)
    time.sleep(1)  # the shaper's queue drains
    after = _hits(client, h, sid)
    eg0, eg1 = before["network"]["egress"], after["network"]["egress"]
    in0, in1 = before["network"]["ingress"], after["network"]["ingress"]
    print(f"  upload of {UPLOAD_MIB} MiB at {mbit:.1f} Mbit/s; {UDP_PACKETS} UDP packets in")
    _moved("egress overlimits", eg0["overlimits"], eg1["overlimits"])
    print(f"  egress dropped {eg0['dropped']} -> {eg1['dropped']}")
    _moved("ingress dropped", in0["dropped"], in1["dropped"])
    _moved("ingress overlimits", in0["overlimits"], in1["overlimits"])

    # The same counters in the admin views and the CLI; another tenant's id answers 404.
    admin = admin_headers(s)
    one = client.get(f"/v1/admin/servers/{sid}/limits/hits", headers=admin)
    assert one.status_code == 200 and one.json()["limit_hits"]["pids"]["max_events"] >= 1
    listing = client.get(
        "/v1/admin/limits/hits", params={"tenant_id": tenant.id}, headers=admin
    ).json()
    assert [e["server"]["id"] for e in listing["servers"]] == [sid]
    cli = CliRunner().invoke(app, ["server", "hits", str(sid), "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["limit_hits"]["memory"]["oom_kills"] >= 1
    usage.sample_all(s, lxd)  # the month's report lists servers with samples
    cli = CliRunner().invoke(app, ["usage", "report", "--hits", "-t", str(tenant.id), "--json"])
    assert cli.exit_code == 0, cli.output
    (reported,) = json.loads(cli.stdout)["servers"]
    assert reported["limit_hits"]["pids"]["max_events"] == after["pids"]["max_events"]
    table = CliRunner().invoke(app, ["usage", "report", "--hits", "-t", str(tenant.id)])
    assert table.exit_code == 0 and "limit hits" in table.stdout, table.output
    other = make_tenant(s, lxd, "hits-other")
    assert client.get(f"/v1/servers/{sid}/limits/hits", headers=other.headers).status_code == 404
