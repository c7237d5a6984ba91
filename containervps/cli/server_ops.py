"""`containervps server ssh|exec|console|rebuild|resize|protect|snapshot ...` (acting as admin)."""

from __future__ import annotations

import json
import os
import shlex
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
from containervps.cli.server import TenantOption, _run, _show_after, _tenant_id
from containervps.db.models import Server
from containervps.errors import ContainerVpsError, InvalidInput, ServiceUnavailable
from containervps.lxd import InteractiveExec
from containervps.services import audit, changes, guest, servers, snapshots
from containervps.services.tokens import CLI_ACTOR

# Merged into `containervps server` (cli/__init__.py adds it without a name).
app = typer.Typer()
snapshot_app = typer.Typer(help="Snapshots of a server.", no_args_is_help=True)
app.add_typer(snapshot_app, name="snapshot")

ESCAPE = b"\x1d"  # Ctrl-], as telnet: leaves the console
EOT = b"\x04"


def _server(server: str, tenant: str | None) -> Server:
    return servers.find_server(common.settings(), ref=server, tenant_id=_tenant_id(tenant))


@app.command("ssh")
def ssh(
    server: str,
    tenant: str | None = TenantOption,
    key: str | None = typer.Option(None, "--key", "-i", help="Private key for ssh -i."),
    print_only: bool = typer.Option(False, "--print", help="Print the ssh command, do not run."),
    args: list[str] = typer.Argument(None, help="Remote command (after --)."),
) -> None:
    """Log in as root through the server's forwarded port with the real OpenSSH client."""
    row = _server(server, tenant)
    if not row.ssh_port:
        raise InvalidInput(f"server {row.id} has no SSH port")
    command = ["ssh", "-p", str(row.ssh_port), *(["-i", key] if key else [])]
    command += [f"root@{common.settings().ssh_listen_address}", *(args or [])]
    if print_only:
        common.console.print(shlex.join(command), highlight=False, soft_wrap=True)
        return
    if shutil.which("ssh") is None:
        raise InvalidInput(
            "the ssh client is not installed", resolution="apt-get install openssh-client"
        )
    os.execvp("ssh", command)


@app.command("exec")
def exec_(
    server: str,
    command: list[str] = typer.Argument(..., help="Command and arguments (after --)."),
    tenant: str | None = TenantOption,
    timeout: float | None = typer.Option(None, help="Seconds (default and maximum: settings)."),
) -> None:
    """Run a command as root inside a server; exit with its exit code."""
    s = common.settings()
    row = _server(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.exec", target=f"server:{row.id}"):
        out = guest.run_command(
            s, common.lxd(), server_id=row.id or 0, tenant_id=None, command=command, timeout=timeout
        )
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    raise typer.Exit(out.exit_code)


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
    row = _server(server, tenant)
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


@app.command("rebuild")
def rebuild(
    server: str,
    image: str = typer.Option(..., help="Image name (`image list`)."),
    tenant: str | None = TenantOption,
    json_out: bool = common.JsonOption,
) -> None:
    """A fresh disk from another image; id, name, port, plan and SSH keys stay."""
    s = common.settings()
    row = _server(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.rebuild", target=f"server:{row.id}"):
        common.lxd()
        accepted = changes.request_rebuild(s, tenant_id=None, server_id=row.id or 0, image=image)
        _run(accepted.action, what=f"rebuilding {row.name}")
    if accepted.root_password:
        common.err_console.print(f"root password (shown once): {accepted.root_password}")
    _show_after(row.id or 0, json_out)


@app.command("resize")
def resize(
    server: str,
    plan: str = typer.Option(..., help="Plan name (`plan list`)."),
    tenant: str | None = TenantOption,
    json_out: bool = common.JsonOption,
) -> None:
    """Another plan: quota and capacity checked first, limits changed live."""
    s = common.settings()
    row = _server(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.resize", target=f"server:{row.id}"):
        accepted = changes.request_resize(
            s, common.lxd(), tenant_id=None, server_id=row.id or 0, plan=plan
        )
        _run(accepted.action, what=f"resizing {row.name}")
    _show_after(row.id or 0, json_out)


@app.command("protect")
def protect(
    server: str,
    delete: bool | None = typer.Option(None, "--delete/--no-delete"),
    rebuild: bool | None = typer.Option(None, "--rebuild/--no-rebuild"),
    tenant: str | None = TenantOption,
) -> None:
    """Turn delete and/or rebuild protection on or off."""
    s = common.settings()
    row = _server(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.protect", target=f"server:{row.id}"):
        done = changes.change_protection(
            s, tenant_id=None, server_id=row.id or 0, delete=delete, rebuild=rebuild
        )
    common.console.print(
        f"server {done.id}: delete protection {done.delete_protection}, "
        f"rebuild protection {done.rebuild_protection}"
    )


@snapshot_app.command("create")
def snapshot_create(
    server: str,
    name: str | None = typer.Option(None, help="Default: snap-<UTC time>."),
    tenant: str | None = TenantOption,
) -> None:
    """Snapshot a server's disk."""
    s = common.settings()
    row = _server(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="snapshot.create", target=f"server:{row.id}"):
        snap = snapshots.create_snapshot(
            s, common.lxd(), server_id=row.id or 0, tenant_id=None, name=name
        )
    common.console.print(f"snapshot {snap.id} ({snap.name}) of server {row.id}")


@snapshot_app.command("list")
def snapshot_list(
    server: str, tenant: str | None = TenantOption, json_out: bool = common.JsonOption
) -> None:
    """A server's snapshots."""
    row = _server(server, tenant)
    rows = snapshots.list_snapshots(common.settings(), server_id=row.id or 0, tenant_id=None)
    if json_out:
        common.print_json([r.model_dump(mode="json") for r in rows])
        return
    common.print_table(
        f"snapshots of server {row.id}",
        ["id", "name", "status", "created"],
        [(r.id, r.name, r.status, r.created_at) for r in rows],
    )


@snapshot_app.command("restore")
def snapshot_restore(server: str, snapshot_id: int, tenant: str | None = TenantOption) -> None:
    """Put a server's disk back as it was at a snapshot."""
    s = common.settings()
    row = _server(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="snapshot.restore", target=f"server:{row.id}"):
        common.lxd()
        accepted = snapshots.request_restore(
            s, server_id=row.id or 0, tenant_id=None, snapshot_id=snapshot_id
        )
        _run(accepted.action, what=f"restoring {row.name}")
    name = accepted.action.params["snapshot"]
    common.console.print(f"server {row.id} restored from snapshot {snapshot_id} ({name})")


@snapshot_app.command("delete")
def snapshot_delete(server: str, snapshot_id: int, tenant: str | None = TenantOption) -> None:
    """Delete a snapshot."""
    s = common.settings()
    row = _server(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="snapshot.delete", target=f"server:{row.id}"):
        snapshots.delete_snapshot(
            s, common.lxd(), server_id=row.id or 0, tenant_id=None, snapshot_id=snapshot_id
        )
    common.console.print(f"snapshot {snapshot_id} deleted")
