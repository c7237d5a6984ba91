"""`containervps cluster ...`: the development LXD cluster on this host (services/cluster)."""

from __future__ import annotations

import typer

from containervps.cli import common
from containervps.services.cluster.dev import ClusterStatus, DevCluster
from containervps.services.cluster.layout import MAX_MEMBERS

app = typer.Typer(help="A development LXD cluster on this one host.", no_args_is_help=True)
MembersOption = typer.Option(3, "--members", min=1, max=MAX_MEMBERS, help="Cluster members.")


def _print_status(status: ClusterStatus) -> None:
    common.print_table(
        f"development cluster (bridge {status.bridge}: "
        f"{'up' if status.bridge_exists else 'absent'})",
        ["member", "address", "netns", "daemon pid", "RSS MiB", "LXD status"],
        [
            (
                m.name,
                m.address,
                "yes" if m.netns else "no",
                m.pid or "-",
                f"{m.rss_mib:.0f}" if m.pid else "-",
                m.lxd_status or "-",
            )
            for m in status.members
        ],
    )
    if status.running:
        common.console.print(f"platform: CONTAINERVPS_LXD_SOCKET={status.socket}")


@app.command("dev-up")
def dev_up(
    members: int = MembersOption,
    json_out: bool = common.JsonOption,
) -> None:
    """Start N LXD daemons (own netns, LXD_DIR, pool, bridge) as one cluster; idempotent."""
    cluster = DevCluster(common.settings(), members=members)
    if json_out:
        common.print_json(cluster.up())
        return
    with common.console.status("development cluster...") as spinner:
        cluster.say = lambda msg: spinner.update(msg)
        result = cluster.up()
    what = "created" if result.created else "already running"
    common.console.print(f"cluster {what} ({result.seconds:.1f}s)")
    _print_status(result.status)


@app.command("dev-down")
def dev_down(json_out: bool = common.JsonOption) -> None:
    """Stop the development cluster's daemons and remove all it made."""
    cluster = DevCluster(common.settings())
    result = cluster.down()
    if json_out:
        common.print_json(result)
        return
    for line in result.removed:
        common.console.print(line)
    common.console.print(f"cluster removed ({result.seconds:.1f}s)")


@app.command("dev-status")
def dev_status(
    members: int = MembersOption,
    json_out: bool = common.JsonOption,
) -> None:
    """Bridge, namespaces, daemons (memory) and what the cluster reports per member."""
    status = DevCluster(common.settings(), members=members).status()
    if json_out:
        common.print_json({**common.to_jsonable(status), "running": status.running})
        return
    _print_status(status)


@app.command("member-stop")
def member_stop(
    name: str = typer.Argument(..., help="Member name, e.g. member3."),
    members: int = MembersOption,
) -> None:
    """Stop one member's LXD daemon, leaving its containers running (it goes offline)."""
    stopped = DevCluster(common.settings(), members=members).stop_member(name)
    common.console.print(f"{name}: daemon {'stopped' if stopped else 'was not running'}")


@app.command("member-start")
def member_start(
    name: str = typer.Argument(..., help="Member name, e.g. member3."),
    members: int = MembersOption,
) -> None:
    """Start one member's LXD daemon again (it rejoins and finds its containers)."""
    pid = DevCluster(common.settings(), members=members).start_member(name)
    common.console.print(f"{name}: daemon started (pid {pid})")
