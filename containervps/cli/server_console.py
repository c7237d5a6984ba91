"""`containervps server console`: a root shell inside a server, here or through the API."""

from __future__ import annotations

import json
import shutil
import sys
import termios
import threading
import time
import tty
from contextlib import suppress
from typing import Any

import typer
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect

from containervps.cli import common
from containervps.cli.shared import TenantOption, find
from containervps.errors import ContainerVpsError, InvalidInput, ServiceUnavailable
from containervps.lxd import InteractiveExec
from containervps.services.servers import guest

# Merged into `containervps server` (cli/__init__.py adds it without a name).
app = typer.Typer()

ESCAPE = b"\x1d"  # Ctrl-], as telnet: leaves the console
EOT = b"\x04"
PROMPT_QUIET_SECONDS = 0.3
PROMPT_WAIT_SECONDS = 10.0


def _pump_stdin(
    shell: InteractiveExec, done: threading.Event, prompt_shown: threading.Event | None
) -> None:
    if prompt_shown is not None:
        # Piped input typed ahead of the shell's line editor would be dropped when it starts.
        prompt_shown.wait(PROMPT_WAIT_SECONDS)
    reader = getattr(sys.stdin, "buffer", sys.stdin)
    while not done.is_set():
        data = reader.read1(1024) if hasattr(reader, "read1") else reader.read(1)
        if not data:  # end of piped input: Ctrl-D ends the shell, whose output still comes
            shell.send(EOT)
            return
        if ESCAPE in data:
            done.set()
            return
        shell.send(data if isinstance(data, bytes) else data.encode())


def _attach_api(url: str, token: str, server: str) -> None:
    """Attach to the API's console websocket (binary frames both ways), as a tenant would."""
    if not server.isdigit():
        raise InvalidInput("with --api, pass the server id")
    ws_url = url.rstrip("/").replace("http", "ws", 1) + f"/v1/servers/{server}/console"
    size = shutil.get_terminal_size()
    try:
        ws = connect(
            f"{ws_url}?width={size.columns}&height={size.lines}",
            additional_headers={"Authorization": f"Bearer {token}"},
            legacy=True,
            open_timeout=10,
        )
    except (WebSocketException, OSError) as exc:
        raise ServiceUnavailable(f"cannot reach the console at {ws_url}: {exc}") from exc
    reader: Any = getattr(sys.stdin, "buffer", sys.stdin)

    def pump() -> None:
        with suppress(ConnectionClosed):
            while data := reader.read1(1024):
                if ESCAPE in data:
                    ws.close()
                    return
                ws.send(data)
            ws.send(EOT)

    threading.Thread(target=pump, daemon=True).start()
    with suppress(ConnectionClosed):
        for message in ws:
            if isinstance(message, str):  # an error object, then the close
                raise ContainerVpsError(json.loads(message)["error"]["message"])
            sys.stdout.buffer.write(message)
            sys.stdout.buffer.flush()


@app.command("console")
def console(
    server: str,
    tenant: str | None = TenantOption,
    api: str | None = typer.Option(None, "--api", help="Attach through this API (URL)."),
    token: str | None = typer.Option(None, "--token", help="Tenant token for --api."),
) -> None:
    """Attach to a root shell inside a server (Ctrl-] or `exit` leaves)."""
    if api:
        if not token:
            raise InvalidInput("--api needs --token")
        _attach_api(api, token, server)
        return
    s = common.settings()
    row = find(server, tenant)
    size = shutil.get_terminal_size()
    is_tty = sys.stdin.isatty()
    saved = termios.tcgetattr(sys.stdin.fileno()) if is_tty else None
    with guest.open_shell(
        s,
        common.lxd(),
        server_id=row.id or 0,
        tenant_id=None,
        width=size.columns,
        height=size.lines,
    ) as shell:
        done, prompt_shown = threading.Event(), threading.Event()
        if saved is not None:
            tty.setraw(sys.stdin.fileno())
        try:
            threading.Thread(
                target=_pump_stdin,
                args=(shell, done, None if is_tty else prompt_shown),
                daemon=True,
            ).start()
            last_output = 0.0
            while not done.is_set():
                data = shell.recv(0.2)
                if data is None:
                    break
                if data:
                    last_output = time.monotonic()
                    sys.stdout.buffer.write(data)
                    sys.stdout.buffer.flush()
                elif last_output and time.monotonic() - last_output >= PROMPT_QUIET_SECONDS:
                    prompt_shown.set()  # output came, then a pause: the shell waits for input
        finally:
            done.set()
            if saved is not None:
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
