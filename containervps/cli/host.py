"""`containervps host ...`: start daemons, set up LXD, check what this host can enforce."""

from __future__ import annotations

import typer
from sqlalchemy.exc import OperationalError

from containervps.cli import common
from containervps.errors import ContainerVpsError
from containervps.schemas.host import HostPublic
from containervps.services.cluster import members
from containervps.services.firewalls import enforce
from containervps.services.host import daemons, lxcfs_watchdog
from containervps.services.host.check import HostCheck
from containervps.services.host.setup import HostSetup

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
    servers = members.server_counts(common.settings()).get(name, 0)
    row = HostPublic.of(members.get_host(common.settings(), name), servers=servers)
    if json_out:
        common.print_json(row.model_dump())
        return
    _print_hosts([row])


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
