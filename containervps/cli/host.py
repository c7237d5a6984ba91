"""`containervps host ...`: start daemons, set up LXD, check what this host can enforce."""

from __future__ import annotations

import time

import typer
from sqlalchemy.exc import OperationalError

from containervps.cli import common
from containervps.errors import ContainerVpsError
from containervps.schemas.host import HostPublic
from containervps.services.actions.runner import run_action
from containervps.services.cluster import drain, members
from containervps.services.firewalls import enforce
from containervps.services.host import daemons, lxcfs_watchdog
from containervps.services.host.check import HostCheck
from containervps.services.host.setup import HostSetup
from containervps.services.servers.migrate import TO
from containervps.services.tenancy import audit
from containervps.services.tenancy.tokens import CLI_ACTOR

app = typer.Typer(
    help="Host set-up and capability checks; LXD cluster members as hosts.", no_args_is_help=True
)


@app.command("start")
def start(
    docker: bool = typer.Option(False, "--docker", help="Also start dockerd (benchmarks)."),
) -> None:
    """Start lxcfs, then LXD (and dockerd) unless they are running."""
    s = common.settings()
    steps = [daemons.ensure_lxcfs(s), daemons.ensure_lxd(s)]
    if docker:
        steps.append(daemons.ensure_dockerd(s))
    for st in steps:
        common.console.print(f"{st.name}: {'started' if st.started else 'running'} ({st.detail})")
    try:  # a rebooted host lost the firewall and isolation table: rebuild it from the database
        enforce.sync(s)
        common.console.print(f"firewalls: table inet {s.net_filter_table} loaded")
    except (ContainerVpsError, OperationalError) as exc:
        # A fresh host or a database older than the code (`db upgrade` runs after this);
        # `serve` loads the table at start-up.
        reason = exc.one_line() if isinstance(exc, ContainerVpsError) else "database not ready"
        common.err_console.print(f"firewalls: not loaded yet ({reason})")
    if daemons.lxcfs_options_differ(s):  # e.g. an upgrade changed lxcfs_options
        report = lxcfs_watchdog.repair_lxcfs(s, all_containers=True)
        common.console.print(
            f"lxcfs: restarted with {s.lxcfs_options}; {len(report.repaired)} of "
            f"{report.scanned} running containers re-attached"
        )


@app.command("repair-lxcfs")
def repair_lxcfs(
    all_containers: bool = typer.Option(
        False, "--all-containers", help="Also containers that are not servers of the platform."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Start lxcfs if it stopped and re-attach its /proc views in running VPSs (no reboot)."""
    report = lxcfs_watchdog.repair_lxcfs(common.settings(), all_containers=all_containers)
    if json_out:
        common.print_json(report)
        return
    common.console.print(
        f"lxcfs: {'restarted' if report.restarted else 'running'}; "
        f"{len(report.repaired)} of {report.scanned} running containers re-attached "
        f"in {report.seconds:.2f}s"
    )
    common.print_table(
        "lxcfs views re-attached",
        ["container", "views", "namespaces", "errors"],
        [
            (f"{r.project}/{r.name}", str(len(r.replaced)), str(r.namespaces), "; ".join(r.errors))
            for r in report.repaired
        ],
    )
    if any(r.errors for r in report.repaired):
        raise typer.Exit(1)


@app.command("init")
def init(json_out: bool = common.JsonOption) -> None:
    """Create the storage pool, the VPS bridge, the base profile; widen subuid/subgid."""
    s = common.settings()
    steps = HostSetup(s, common.lxd()).init()
    if json_out:
        common.print_json(steps)
        return
    common.print_table(
        "host init",
        ["step", "outcome", "detail"],
        [(st.name, st.outcome, st.detail) for st in steps],
    )


@app.command("check")
def check(json_out: bool = common.JsonOption) -> None:
    """Probe what this host can enforce (each probe really tests it) and what that means."""
    s = common.settings()
    with common.console.status("probing host capabilities...") if not json_out else _null():
        report = HostCheck(s).run()
    if json_out:
        common.print_json(report)
        return
    colours = {"ok": "green", "degraded": "yellow", "missing": "red", "skipped": "dim"}
    common.print_table(
        "host check",
        ["capability", "status", "detail", "meaning for tenants"],
        [(p.name, f"[{colours[p.status]}]{p.status}[/]", p.detail, p.impact) for p in report],
    )


def _print_hosts(rows: list[HostPublic]) -> None:
    common.print_table(
        "hosts",
        ["name", "url", "state", "CPUs", "memory MiB", "disk GiB", "servers", "labels"],
        [
            (
                h.name,
                h.url,
                h.state,
                h.cpu,
                h.memory_mib,
                h.disk_gib,
                h.servers,
                ",".join(f"{k}={v}" for k, v in h.labels.items()),
            )
            for h in rows
        ],
    )


@app.command("join")
def join(
    name: str = typer.Argument(..., help="The LXD cluster member's name."),
    label: list[str] = typer.Option([], "--label", help="key=value, repeatable."),
    json_out: bool = common.JsonOption,
) -> None:
    """Record an existing LXD cluster member as a host, with its capacity read from LXD."""
    labels = dict(item.partition("=")[::2] for item in label)
    row = HostPublic.of(
        members.join_host(common.settings(), common.lxd(), name=name, labels=labels)
    )
    if json_out:
        common.print_json(row.model_dump())
        return
    _print_hosts([row])


@app.command("list")
def list_hosts(json_out: bool = common.JsonOption) -> None:
    """Recorded cluster members (none: single-host mode)."""
    counts = members.server_counts(common.settings())
    rows = [
        HostPublic.of(h, servers=counts.get(h.name, 0))
        for h in members.list_hosts(common.settings())
    ]
    if json_out:
        common.print_json([r.model_dump() for r in rows])
        return
    _print_hosts(rows)


@app.command("show")
def show(name: str, json_out: bool = common.JsonOption) -> None:
    """One recorded cluster member."""
    row = _host_row(name)
    if json_out:
        common.print_json(row.model_dump())
        return
    _print_hosts([row])


def _host_row(name: str) -> HostPublic:
    servers = members.server_counts(common.settings()).get(name, 0)
    return HostPublic.of(members.get_host(common.settings(), name), servers=servers)


@app.command("drain")
def drain_host(
    name: str = typer.Argument(..., help="The recorded member to drain."),
    json_out: bool = common.JsonOption,
) -> None:
    """Stop admitting on a member, notify each tenant, move its servers off one by one."""
    s = common.settings()
    with audit.audited(s, actor=CLI_ACTOR, action="host.drain", target=f"host:{name}"):
        lxd = common.lxd()
        accepted = drain.request_drain(s, name=name)
        moves = []
        for n, action in enumerate(accepted.actions, start=1):
            assert action.id is not None
            started = time.monotonic()
            with common.console.status(
                f"moving server {action.server_id} ({n}/{len(accepted.actions)})..."
            ):
                done = run_action(s, action.id, lxd=lxd)
            moves.append(
                {
                    "server_id": done.server_id,
                    "action_id": done.id,
                    "status": done.status,
                    "to": done.params.get(TO) if done.status == "success" else None,
                    "seconds": round(time.monotonic() - started, 1),
                    "error": done.error_message,
                }
            )
    host = _host_row(name)
    if json_out:
        common.print_json({"host": host.model_dump(), "moves": moves})
    else:
        common.print_table(
            f"drain of {name}",
            ["server", "action", "status", "to", "seconds", "error"],
            [tuple(str(m[k] or "") for k in m) for m in moves],
        )
        common.console.print(f"host {name}: {host.state}, {host.servers} server(s) left")
    failed = [m for m in moves if m["status"] != "success"]
    if failed:
        common.err_console.print(
            f"{len(failed)} server(s) did not move; host {name} stays draining "
            "(run drain again to retry them)"
        )
        raise typer.Exit(1)


@app.command("restore")
def restore_host(name: str, json_out: bool = common.JsonOption) -> None:
    """Admit new servers on a drained member again (moved servers stay where they are)."""
    s = common.settings()
    with audit.audited(s, actor=CLI_ACTOR, action="host.restore", target=f"host:{name}"):
        drain.restore_member(s, name=name)
    row = _host_row(name)
    if json_out:
        common.print_json(row.model_dump())
        return
    _print_hosts([row])


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
