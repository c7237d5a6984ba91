"""The admin CLI: one Typer sub-app per noun."""

from __future__ import annotations

import typer

from containervps.cli import db, host, image, serve
from containervps.cli.common import ErrorHandlingGroup

app = typer.Typer(
    name="containervps",
    help="containervps: LXD system containers as VPSs (admin CLI).",
    cls=ErrorHandlingGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(host.app, name="host")
app.add_typer(image.app, name="image")
app.add_typer(db.app, name="db")
app.command("serve")(serve.serve)


def main() -> None:
    """Console-script entry point."""
    app()
