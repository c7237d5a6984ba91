"""Root over SSH: keys API, a forwarded port per server, the real ssh client, a root password."""

from __future__ import annotations

import base64
import contextlib
import secrets
import struct
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from containervps.config import Settings
from containervps.errors import LxdError
from containervps.lxd import Lxd
from containervps.services.reconcile import Reconciler
from containervps.services.servers import ssh_forwards
from tests.integration.api_support import make_tenant, server_project, wait_action
from tests.integration.ssh_support import build_deb, make_key, ssh, wait_for_ssh

pytestmark = pytest.mark.usefixtures("cp_settings")


def _cmdlines() -> list[bytes]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                found.append((proc / "cmdline").read_bytes())
    return found


def _create(client: TestClient, headers: dict[str, str], body: dict) -> dict:
    r = client.post("/v1/servers", json=body, headers=headers)
    assert r.status_code == 202, r.text
    assert wait_action(client, r.json()["action"]["id"], headers)["status"] == "success"
    return dict(r.json())


def test_ssh_keys_api_validates_and_scopes_keys(
    client: TestClient, cp_settings: Settings, ready_host: Lxd, tmp_path: Path
) -> None:
    tenant, other = (make_tenant(cp_settings, ready_host, x) for x in ("keys", "keys-other"))
    pub = make_key(tmp_path, "k1").with_suffix(".pub").read_text().strip()

    r = client.post("/v1/ssh_keys", json={"name": "k1", "public_key": pub}, headers=tenant.headers)
    assert r.status_code == 201, r.text
    key = r.json()["ssh_key"]
    fingerprint = subprocess_fingerprint(tmp_path / "k1.pub")
    assert key["fingerprint"] == fingerprint
    key_type, encoded = pub.split()[:2]
    blob = base64.b64decode(encoded)
    no_data = base64.b64encode(struct.pack(">I", len(key_type)) + key_type.encode()).decode()
    trailing = base64.b64encode(blob + b"\x00\x00\x00\x01x").decode()
    for bad in (
        "ssh-ed25519 AAAA",
        "not a key",
        "ssh-rsa " + "A" * 40,
        pub + "\n" + pub,
        f"{key_type} {no_data}",  # a type with no key data
        f"{key_type} {trailing}",  # a valid key followed by more bytes
        f"{key_type} {encoded} evil\x1b[2J\x07",  # a comment with ESC and BEL
    ):
        r = client.post(
            "/v1/ssh_keys", json={"name": "bad", "public_key": bad}, headers=tenant.headers
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_input"
        assert r.json()["error"]["details"]["field"] == "public_key", r.text
    r = client.post(
        "/v1/ssh_keys", json={"name": "again", "public_key": pub}, headers=tenant.headers
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
    assert [
        k["name"] for k in client.get("/v1/ssh_keys", headers=tenant.headers).json()["ssh_keys"]
    ] == ["k1"]
    # Another tenant neither sees nor deletes it, nor can it name it in a create.
    assert client.get(f"/v1/ssh_keys/{key['id']}", headers=other.headers).status_code == 404
    assert client.delete(f"/v1/ssh_keys/{key['id']}", headers=other.headers).status_code == 404
    r = client.post(
        "/v1/servers",
        json={"name": "x", "plan": "nano", "image": "busybox", "ssh_keys": [key["id"]]},
        headers=other.headers,
    )
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "ssh_keys"
    assert client.get("/v1/servers", headers=other.headers).json()["servers"] == []
    assert client.delete(f"/v1/ssh_keys/{key['id']}", headers=tenant.headers).status_code == 204
    assert client.get("/v1/ssh_keys", headers=tenant.headers).json()["ssh_keys"] == []


def subprocess_fingerprint(pub: Path) -> str:
    """The fingerprint as ssh-keygen prints it."""
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, check=True)
    return out.stdout.decode().split()[1]


def test_root_over_ssh_installs_a_package_and_restarts_sshd(
    client: TestClient, cp_settings: Settings, ready_host: Lxd, tmp_path: Path
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "ssh")
    h = tenant.headers
    good, wrong = make_key(tmp_path, "good"), make_key(tmp_path, "wrong")
    r = client.post(
        "/v1/ssh_keys",
        json={"name": "laptop", "public_key": good.with_suffix(".pub").read_text()},
        headers=h,
    )
    assert r.status_code == 201, r.text

    name = f"deb-{secrets.token_hex(3)}"  # names share the bridge's DNS with other runs
    created = _create(
        client, h, {"name": name, "plan": "micro", "image": "debian-12", "ssh_keys": ["laptop"]}
    )
    server = created["server"]
    assert created["root_password"] is None  # keys given: no password
    port = server["ssh"]["port"]
    assert cp_settings.ssh_port_min <= port <= cp_settings.ssh_port_max
    assert server["ssh"]["host"] == cp_settings.ssh_address == "10.213.0.1"  # bridge gateway
    inst = ready_host.instances.get(name=name, project=server_project(cp_settings, tenant, name))
    # A kernel DNAT to the fixed address the 202 answer already showed: one element of the
    # platform's nftables map, no LXD device, no process.
    assert server["public_net"]["ipv4"] == inst.devices["eth0"]["ipv4.address"]
    assert (ssh_forwards.forwards(cp_settings) or {})[port] == server["public_net"]["ipv4"]
    assert "ssh" not in inst.devices
    assert not [c for c in _cmdlines() if b"forkproxy" in c and name.encode() in c]

    wait_for_ssh(port, key=good)
    who = ssh(port, "id -u; hostname", key=good)
    assert who.returncode == 0 and who.stdout.decode().split() == ["0", name]
    keys = ssh(port, "ls /etc/ssh/ | grep '^ssh_host_.*_key$'", key=good)
    # Made at first boot, Ed25519 and ECDSA only (an RSA key costs most of a boot's CPU).
    assert keys.stdout.decode().split() == ["ssh_host_ecdsa_key", "ssh_host_ed25519_key"]

    deb = build_deb(tmp_path)
    copy = ssh(port, "cat > /tmp/cvps-hello.deb", key=good, stdin=deb.read_bytes())
    assert copy.returncode == 0, copy.stderr
    install = ssh(port, "dpkg -i /tmp/cvps-hello.deb && cvps-hello", key=good)
    assert install.returncode == 0, install.stderr
    assert b"hello from a package" in install.stdout
    assert b"cvps-hello" in ssh(port, "dpkg -l cvps-hello", key=good).stdout

    restart = ssh(port, "systemctl restart ssh && systemctl is-active ssh", key=good)
    assert restart.returncode == 0 and restart.stdout.strip() == b"active", restart.stderr
    wait_for_ssh(port, key=good)  # sshd came back and still takes the key

    refused = ssh(port, "true", key=wrong)
    assert refused.returncode == 255
    assert b"Permission denied" in refused.stderr


def test_no_keys_gives_a_one_time_root_password(
    client: TestClient, cp_settings: Settings, ready_host: Lxd, tmp_path: Path
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "pw")
    created = _create(
        client,
        tenant.headers,
        {"name": f"deb-pw-{secrets.token_hex(3)}", "plan": "nano", "image": "debian-12"},
    )
    password = created["root_password"]
    assert isinstance(password, str) and len(password) == cp_settings.root_password_length
    port = created["server"]["ssh"]["port"]
    # Shown once: not in the server object, not in the database file.
    shown = client.get(f"/v1/servers/{created['server']['id']}", headers=tenant.headers).text
    assert password not in shown
    db = cp_settings.data_dir / "containervps.db"
    for path in (db, db.with_name(db.name + "-wal")):
        assert not path.exists() or password.encode() not in path.read_bytes()

    secret = tmp_path / "pw"
    secret.write_text(password + "\n")
    bad = tmp_path / "bad"
    bad.write_text("not-the-password\n")
    login = None
    for _ in range(60):  # sshd makes its host keys at first boot
        login = ssh(port, "id -u", password_file=secret, timeout=30)
        if login.returncode == 0:
            break
        time.sleep(1)
    assert login is not None and login.returncode == 0, login.stderr if login else None
    assert login.stdout.strip() == b"0"
    _login_reaches_the_plan_process_limit(port, secret, created["server"])
    refused = ssh(port, "id -u", password_file=bad, timeout=30)
    assert refused.returncode == 255 and b"Permission denied" in refused.stderr


# Starts up to {want} sleeps (60 s at most each) in a subshell, which exits at the first fork
# the kernel refuses; the shell reads the count back with builtins only (no fork needed) and
# ends the sleeps with one signal to its process group, which it ignores itself. Run by sh:
# bash would retry a refused fork for half a minute.
SPAWN = (
    "sh -c '( i=0; while [ $i -lt {want} ]; do sleep 60 & i=$((i+1)); echo $i > /tmp/spawned;"
    ' done ); read n < /tmp/spawned; echo spawned=$n; trap "" TERM; kill 0\''
)


def _login_reaches_the_plan_process_limit(port: int, secret: Path, server: dict) -> None:
    """An SSH session may start processes up to close to the plan's limit (not to a share
    that systemd gives the ssh service or a user slice)."""
    where = ssh(port, "grep :pids: /proc/self/cgroup", password_file=secret, timeout=30)
    print(f"an SSH login's pids cgroup: {where.stdout.decode().strip()}")
    assert b"/user.slice/user-0.slice/session-" in where.stdout, where.stdout  # logind's
    limit = int(server["limits"]["processes"]["value"])
    want = limit * 3 // 4  # room for systemd, its services and the session itself
    out = ssh(port, SPAWN.format(want=want), password_file=secret, timeout=90)
    text = out.stdout.decode()
    print(f"process limit {limit}: an SSH session started {text.strip()} of {want} asked")
    assert f"spawned={want}" in text.split(), (text, out.stderr.decode()[-500:])


def test_ports_are_unique_and_freed_on_delete(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "ports")
    tag = secrets.token_hex(3)
    h = tenant.headers
    a = _create(client, h, {"name": f"a-{tag}", "plan": "nano", "image": "busybox"})["server"]
    b = _create(client, h, {"name": f"b-{tag}", "plan": "nano", "image": "busybox"})["server"]
    assert a["ssh"]["port"] != b["ssh"]["port"]
    r = client.delete(f"/v1/servers/{a['id']}", headers=h)
    assert r.status_code == 202
    assert wait_action(client, r.json()["action"]["id"], h)["status"] == "success"
    c = _create(client, h, {"name": f"c-{tag}", "plan": "nano", "image": "busybox"})["server"]
    assert c["ssh"]["port"] == a["ssh"]["port"]  # the lowest free port again


def test_projects_refuse_what_the_platform_never_sets_and_old_servers_are_moved_over(
    client: TestClient, cp_settings: Settings, ready_host: Lxd
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "upgrade")
    name = f"old-{secrets.token_hex(3)}"
    server = _create(client, tenant.headers, {"name": name, "plan": "nano", "image": "busybox"})
    sid, port = server["server"]["id"], server["server"]["ssh"]["port"]
    ipv4 = server["server"]["public_net"]["ipv4"]
    project = server_project(cp_settings, tenant, name)
    old_device = {"type": "proxy", "nat": "true", "listen": f"tcp:10.213.0.1:{port}"}
    old_device["connect"] = f"tcp:{ipv4}:22"

    # LXD itself refuses proxy devices and shared idmaps in a tenant's project.
    with pytest.raises(LxdError, match="Proxy devices are forbidden"):
        ready_host.instances.update(name=name, project=project, devices={"ssh": old_device})
    with pytest.raises(LxdError, match="Non-isolated containers are forbidden"):
        ready_host.instances.update(
            name=name, project=project, config={"security.idmap.isolated": "false"}
        )

    # What an older version made: proxy devices allowed and one per server; and a host that
    # lost the platform's forwards (a reboot flushes nftables).
    config = ready_host.host.get_project(project) or {}
    older = {**config, "restricted.devices.proxy": "allow"}
    older["restricted.containers.privilege"] = "unprivileged"
    ready_host.host.put_project(name=project, config=older, description="old")
    ready_host.instances.update(name=name, project=project, devices={"ssh": old_device})
    ssh_forwards.remove(cp_settings, port=port)
    assert port not in (ssh_forwards.forwards(cp_settings) or {})

    applied = {(f.kind, f.target) for f in Reconciler(cp_settings, ready_host).run() if f.applied}
    assert {("ssh_forward", f"server:{sid}"), ("ssh_forward", "host")} <= applied
    assert ("project_config", f"tenant:{tenant.id}") in applied
    assert "ssh" not in ready_host.instances.get(name=name, project=project).devices
    fixed = ready_host.host.get_project(project) or {}
    assert fixed["restricted.devices.proxy"] == "block"
    assert fixed["restricted.containers.privilege"] == "isolated"
    assert (ssh_forwards.forwards(cp_settings) or {})[port] == ipv4
    again = Reconciler(cp_settings, ready_host).run()
    assert not [f for f in again if f.kind in ("project_config", "ssh_forward")]
    r = client.post(f"/v1/servers/{sid}/exec", json={"command": "echo ok"}, headers=tenant.headers)
    assert r.status_code == 200 and r.json()["exec"]["stdout"] == "ok\n"
