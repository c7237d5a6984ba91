"""The admin CLI's VPS commands through Typer's CliRunner on the real LXD."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from containervps.cli import app
from containervps.config import Settings
from containervps.lxd import Lxd
from containervps.services.tenancy import ssh_keys
from tests.integration.api_support import ApiProcess, make_tenant, wait_action
from tests.integration.ssh_support import make_key

pytestmark = pytest.mark.usefixtures("cp_settings")

runner = CliRunner()


# What the tests type into a console. The pause before `exit`: LXD 5.0.2 may close the pty's
# stream as the shell exits before the last output went out (a loaded host lost the answer
# twice in one CI run); a person at a console does not exit within microseconds either.
TYPED = "echo cvps-$((6*7))\nsleep 1\nexit\n"


def cli(*args: str, code: int = 0, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == code, (args, result.output, result.stderr)
    return result.stdout


def test_cli_exec_ssh_console_protect_snapshot_resize_rebuild_usage(
    cp_settings: Settings, ready_host: Lxd, tmp_path: Path
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "vpscli")
    pub = make_key(tmp_path, "k").with_suffix(".pub").read_text()
    ssh_keys.add_key(cp_settings, tenant_id=tenant.id, name="k", public_key=pub)
    name, t = f"cli-{secrets.token_hex(3)}", str(tenant.id)
    created = json.loads(
        cli(
            "server",
            "create",
            name,
            "-t",
            t,
            "--plan",
            "nano",
            "--image",
            "busybox",
            "--ssh-key",
            "k",
            "--json",
        )
    )
    port = created["ssh"]["port"]
    assert created["status"] == "running" and port

    result = runner.invoke(
        app, ["server", "exec", name, "-t", t, "--", "sh", "-c", "echo hi; exit 3"]
    )
    assert result.exit_code == 3 and result.stdout == "hi\n", result.output
    assert f"-p {port} root@10.213.0.1" in cli("server", "ssh", name, "-t", t, "--print")
    out = cli("server", "console", name, "-t", t, stdin=TYPED)
    assert "cvps-42" in out.replace("cvps-$((6*7))", "")

    cli("server", "protect", name, "-t", t, "--delete")
    assert (
        "protected against delete" in runner.invoke(app, ["server", "delete", name, "-t", t]).stderr
    )
    cli("server", "protect", name, "-t", t, "--no-delete")

    cli("server", "exec", name, "-t", t, "--", "sh", "-c", "echo one > /root/f")
    cli("server", "snapshot", "create", name, "-t", t, "--name", "s1")
    snaps = json.loads(cli("server", "snapshot", "list", name, "-t", t, "--json"))
    assert [s["name"] for s in snaps] == ["s1"]
    cli("server", "exec", name, "-t", t, "--", "sh", "-c", "echo two > /root/f")
    cli("server", "snapshot", "restore", name, str(snaps[0]["id"]), "-t", t)
    assert cli("server", "exec", name, "-t", t, "--", "cat", "/root/f") == "one\n"
    cli("server", "snapshot", "delete", name, str(snaps[0]["id"]), "-t", t)

    assert (
        json.loads(cli("server", "resize", name, "-t", t, "--plan", "micro", "--json"))["plan"]
        == "micro"
    )
    rebuilt = json.loads(cli("server", "rebuild", name, "-t", t, "--image", "busybox", "--json"))
    assert rebuilt["ssh"]["port"] == port and rebuilt["id"] == created["id"]
    assert (
        cli("server", "exec", name, "-t", t, "--", "cat", "/root/.ssh/authorized_keys").strip()
        == pub.strip()
    )

    cli("usage", "sample")
    report = json.loads(cli("usage", "report", "-t", t, "--json"))
    assert [r["server"]["name"] for r in report["servers"]] == [name]
    assert cli("usage", "report", "--month", "nope", code=1) == ""


def test_cli_console_attaches_through_the_api_websocket(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "wscli")
    api = ApiProcess(cp_settings).start()
    try:
        body = {"name": f"ws-{secrets.token_hex(3)}", "plan": "nano", "image": "busybox"}
        r = httpx.post(f"{api.url}/v1/servers", json=body, headers=tenant.headers, timeout=30)
        assert r.status_code == 202, r.text
        with httpx.Client(base_url=api.url, timeout=60) as client:
            assert (
                wait_action(client, r.json()["action"]["id"], tenant.headers)["status"] == "success"
            )
        sid = str(r.json()["server"]["id"])
        shown = httpx.get(f"{api.url}/v1/servers/{sid}", headers=tenant.headers, timeout=30)
        # the CLI is the operator's: the tenant's view and the cluster member (none: one host)
        admin_view = {**shown.json()["server"], "member": None}
        assert json.loads(cli("server", "show", sid, "--json")) == admin_view
        out = cli(
            "server",
            "console",
            sid,
            "--api",
            api.url,
            "--token",
            tenant.token,
            stdin=TYPED,
        )
        assert "cvps-42" in out.replace("cvps-$((6*7))", "")
        bad = runner.invoke(app, ["server", "console", sid, "--api", api.url, "--token", "nope"])
        assert bad.exit_code == 1 and "invalid or revoked token" in bad.stderr
    finally:
        api.stop()
