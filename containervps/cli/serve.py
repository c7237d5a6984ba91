"""`containervps serve`: run the API server."""

from __future__ import annotations

import errno
import socket

import typer

from containervps.cli import common
from containervps.errors import HostSetupError


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise HostSetupError(
                    f"port {host}:{port} is already in use",
                    resolution="stop what listens there or pass --port / set CONTAINERVPS_API_PORT",
                ) from exc
            raise


def serve(
    host: str | None = typer.Option(None, help="Listen address (default from settings)."),
    port: int | None = typer.Option(None, help="Listen port (default from settings)."),
) -> None:
    """Serve the tenant and admin API (foreground; Ctrl-C stops it)."""
    import uvicorn

    s = common.settings()
    host, port = host or s.api_host, port or s.api_port
    _check_port_free(host, port)
    uvicorn.run(
        "containervps.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=s.log_level.lower(),
    )
