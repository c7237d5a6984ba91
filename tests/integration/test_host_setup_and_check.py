"""`host init`, `host check` and bad input, on the real LXD of this host."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from containervps.cli import app
from containervps.config import Settings
from containervps.errors import HostSetupError, LxdUnavailable
from containervps.lxd import Lxd, connect
from containervps.services.host.setup import HostSetup

runner = CliRunner()


def test_host_init_twice_is_idempotent(settings: Settings, lxd: Lxd) -> None:
    HostSetup(settings, lxd).init()
    second = {step.name: step for step in HostSetup(settings, lxd).init()}
    assert second["storage pool"].outcome == "exists"
    assert second["bridge"].outcome == "exists"
    assert second["subuid/subgid"].outcome == "exists"
    assert second["profile"].outcome == "exists"
    pool = lxd.host.get_pool(settings.storage_pool)
    assert pool is not None and pool.driver == "btrfs"
    bridge = lxd.host.get_network(settings.bridge)
    assert bridge is not None and bridge.config["ipv4.address"] == settings.bridge_subnet
    profile = lxd.host.get_profile(settings.profile)
    assert profile is not None
    assert profile.devices["root"]["pool"] == settings.storage_pool
    assert profile.devices["eth0"]["network"] == settings.bridge


def test_cli_host_init_json(settings: Settings, lxd: Lxd) -> None:
    result = runner.invoke(app, ["host", "init", "--json"])
    assert result.exit_code == 0, result.output
    steps = {s["name"]: s["outcome"] for s in json.loads(result.stdout)}
    assert steps["bridge"] == "exists"


def test_host_check_probes_really_test(ready_host: Lxd) -> None:
    result = runner.invoke(app, ["host", "check", "--json"])
    assert result.exit_code == 0, result.output
    probes = {p["name"]: p for p in json.loads(result.stdout)}
    for name in (
        "lxd",
        "lxcfs",
        "lxcfs views",
        "subuid range",
        "bridge",
        "disk size view",
        "disk IOPS limit",
        "disk size quota",
        "memory/CPU view",
        "inside view",
        "NIC ingress limit",
        "NIC egress limit",
        "qemu",
        "kvm",
        "docker",
    ):
        assert name in probes, name
    # What this host is known to enforce (DESIGN.md "Host facts"), each measured by the probe.
    for name in (
        "lxd",
        "lxcfs",
        "disk size view",
        "disk IOPS limit",
        "disk size quota",
        "memory/CPU view",
        "inside view",
        "NIC ingress limit",
        "NIC egress limit",  # LXD's limit, or the platform's IFB shaping measured from inside
    ):
        assert probes[name]["status"] == "ok", probes[name]
    for probe in probes.values():  # anything not working says what it means for tenants
        assert probe["status"] == "ok" or probe["impact"], probe
    # The scratch container and its pool are gone.
    assert not [
        i for i in ready_host.instances.all(project="default") if i.name.startswith("cvps-probe-")
    ]
    assert not [p for p in ready_host.host.list_pools() if p.name.startswith("cvps-probe-")]


def test_subnet_overlapping_a_host_route_is_refused(
    settings: Settings, lxd: Lxd, run_id: str
) -> None:
    route = next(r for r in _routes() if not r.startswith(("default", "10.213.")))
    network = route.split()[0]
    bad = settings.model_copy(
        update={"bridge": f"cvpst{run_id}", "bridge_subnet": _gateway(network)}
    )
    with pytest.raises(HostSetupError, match="overlaps the host route"):
        HostSetup(bad, lxd).preflight()
    assert lxd.host.get_network(bad.bridge) is None


def test_too_small_subnet_is_refused(settings: Settings, lxd: Lxd, run_id: str) -> None:
    bad = settings.model_copy(update={"bridge": f"cvpst{run_id}", "bridge_subnet": "10.99.0.1/24"})
    with pytest.raises(HostSetupError, match="holds only 253 VPSs"):
        HostSetup(bad, lxd).init()
    assert lxd.host.get_network(bad.bridge) is None


def test_pool_file_that_cannot_be_created(settings: Settings, lxd: Lxd, run_id: str) -> None:
    bad = settings.model_copy(
        update={"storage_pool": f"cvpstest{run_id}", "storage_size_gib": 100_000}
    )  # > ext4's 16 TiB file limit
    with pytest.raises(HostSetupError, match="cannot create the 100000 GiB btrfs pool file"):
        HostSetup(bad, lxd).ensure_pool()
    assert lxd.host.get_pool(bad.storage_pool) is None
    assert not (lxd.api.socket_path.parent / "disks" / f"{bad.storage_pool}.img").exists()


def test_lxd_not_answering_is_one_clear_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no.socket"
    with pytest.raises(LxdUnavailable, match="LXD is not answering"):
        connect(settings.model_copy(update={"lxd_socket": missing}))
    monkeypatch.setenv("CONTAINERVPS_LXD_SOCKET", str(missing))
    from containervps.config import get_settings

    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["image", "list"])
    finally:
        monkeypatch.delenv("CONTAINERVPS_LXD_SOCKET")
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "LXD is not answering" in result.output
    assert "containervps host start" in result.output


def test_unknown_image_is_refused(ready_host: Lxd) -> None:
    result = runner.invoke(app, ["image", "build", "no-such-os"])
    assert result.exit_code == 1
    assert "unknown image 'no-such-os'" in result.output
    assert "busybox" in result.output


def test_serve_on_a_busy_port_is_refused(settings: Settings) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"port 127.0.0.1:{port} is already in use" in result.output


def _routes() -> list[str]:
    import subprocess

    out = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if "/" in line.split()[0]]


def _gateway(network: str) -> str:
    import ipaddress

    net = ipaddress.IPv4Network(network)
    return f"{next(net.supernet(new_prefix=min(net.prefixlen, 20)).hosts())}/20"
