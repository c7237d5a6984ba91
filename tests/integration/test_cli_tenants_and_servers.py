"""The admin CLI through Typer's CliRunner on the real LXD."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from containervps.cli import app
from containervps.config import Settings
from containervps.lxd import Lxd

pytestmark = pytest.mark.usefixtures("cp_settings")

runner = CliRunner()


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output, result.stderr)
    return result.stdout


def test_cli_tenant_token_plan_server_lifecycle(
    cp_settings: Settings, ready_host: Lxd, tmp_path: Path, run_id: str
) -> None:
    name = f"cli-{run_id}"
    created = json.loads(cli("tenant", "create", name, "--max-servers", "2", "--json"))[0]
    tid = str(created["id"])
    assert created["limits"]["servers"] == {"max": 2, "used": 0}
    assert ready_host.host.get_project(created["lxd_project"]) is not None
    assert any(t["name"] == name for t in json.loads(cli("tenant", "list", "--json")))
    quota = json.loads(cli("tenant", "set-quota", name, "--max-servers", "3", "--json"))[0]
    assert quota["limits"]["servers"]["max"] == 3
    assert ready_host.host.get_project(created["lxd_project"])["limits.instances"] == "3"  # type: ignore[index]
    token = json.loads(cli("token", "create", "--tenant", tid, "--json"))
    assert token["secret"].startswith("cvps_")
    assert "nano" in {p["name"] for p in json.loads(cli("plan", "list", "--json"))}
    cli(
        "plan",
        "create",
        f"p{run_id}",
        "--vcpus",
        "1",
        "--memory-mib",
        "128",
        "--disk-gib",
        "1",
        "--disk-read-iops",
        "100",
        "--disk-write-iops",
        "100",
        "--net-ingress-mbit",
        "10",
        "--net-egress-mbit",
        "10",
        "--max-processes",
        "128",
        "--transfer-gib",
        "10",
    )

    server = json.loads(
        cli(
            "server",
            "create",
            "vm1",
            "--tenant",
            tid,
            "--plan",
            f"p{run_id}",
            "--image",
            "busybox",
            "--label",
            "role=web",
            "--json",
        )
    )
    assert server["status"] == "running" and server["labels"] == {"role": "web"}
    inst = ready_host.instances.get(name="vm1", project=created["lxd_project"])
    assert inst.config["limits.memory"] == "128MiB" and inst.tag("server_id") == str(server["id"])
    listed = json.loads(cli("server", "list", "--tenant", name, "--json"))
    assert [s["name"] for s in listed] == ["vm1"]
    assert "enforced" in cli("server", "show", str(server["id"]))
    assert json.loads(cli("server", "stop", "vm1", "--tenant", tid, "--json"))["status"] == "off"
    assert (
        json.loads(cli("server", "start", "vm1", "--tenant", tid, "--json"))["status"] == "running"
    )
    assert json.loads(cli("server", "reboot", str(server["id"]), "--json"))["status"] == "running"
    assert json.loads(cli("reconcile", "--dry-run", "--json")) == []
    cli("server", "delete", str(server["id"]))
    assert not ready_host.instances.exists(name="vm1", project=created["lxd_project"])
    cli("token", "revoke", str(token["id"]))
    cli("db", "backup", str(tmp_path / "backup.db"))
    assert (tmp_path / "backup.db").stat().st_size > 0
    cli("tenant", "delete", name)
    assert ready_host.host.get_project(created["lxd_project"]) is None


def test_cli_errors_are_one_line_with_exit_code_1(cp_settings: Settings) -> None:
    for args in (
        ["server", "show", "987654"],
        ["tenant", "show", "no-such-tenant"],
        ["server", "list"],
        ["tenant", "create", "Bad_Name"],
        ["token", "create"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr
