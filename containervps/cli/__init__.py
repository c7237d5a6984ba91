"""The admin CLI: one Typer sub-app per noun."""

from __future__ import annotations

import typer

from containervps.cli import (
    bench,
    capacity,
    cluster,
    db,
    firewall,
    host,
    image,
    plan,
    reconcile,
    serve,
    server,
    server_console,
    server_ops,
    snapshot,
    tenant,
    token,
    usage,
)
from containervps.cli.common import ErrorHandlingGroup

app = typer.Typer(
    name="containervps",
    help="containervps: LXD system containers as VPSs (admin CLI).",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(host.app, name="host")
app.add_typer(cluster.app, name="cluster")
app.add_typer(image.app, name="image")
app.add_typer(db.app, name="db")
app.add_typer(bench.app, name="bench")
app.command("serve")(serve.serve)
app.add_typer(tenant.app, name="tenant")
app.add_typer(token.app, name="token")
app.add_typer(plan.app, name="plan")
server.app.add_typer(server_ops.app)  # no name: its commands join `server`
server.app.add_typer(server_console.app)
server.app.add_typer(snapshot.app, name="snapshot")
app.add_typer(server.app, name="server")
app.add_typer(usage.app, name="usage")
app.add_typer(firewall.app, name="firewall")
app.command("reconcile")(reconcile.reconcile)
app.command("capacity")(capacity.capacity)


def main() -> None:
    """Console-script entry point."""
    app()
