"""`containervps server ssh|exec|rebuild|resize|unthrottle|protect` (acting as admin)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

import typer

from containervps.cli import common
from containervps.cli.shared import TenantOption, find, run_here, show_after
from containervps.errors import InvalidInput
from containervps.services.metering import allowance
from containervps.services.servers import guest, protection
from containervps.services.servers import rebuild as rebuild_service
from containervps.services.servers import resize as resize_service
from containervps.services.tenancy import audit
from containervps.services.tenancy.tokens import CLI_ACTOR

# Merged into `containervps server` (cli/__init__.py adds it without a name).
app = typer.Typer()


@app.command("ssh")
def ssh(
    server: str,
    tenant: str | None = TenantOption,
    key: str | None = typer.Option(None, "--key", "-i", help="Private key for ssh -i."),
    print_only: bool = typer.Option(False, "--print", help="Print the ssh command, do not run."),
    args: list[str] = typer.Argument(None, help="Remote command (after --)."),
) -> None:
    """Log in as root through the server's forwarded port with the real OpenSSH client."""
    row = find(server, tenant)
    if not row.ssh_port:
        raise InvalidInput(f"server {row.id} has no SSH port")
    command = ["ssh", "-p", str(row.ssh_port), *(["-i", key] if key else [])]
    command += [f"root@{common.settings().ssh_address}", *(args or [])]
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
    row = find(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.exec", target=f"server:{row.id}"):
        out = guest.run_command(
            s, common.lxd(), server_id=row.id or 0, tenant_id=None, command=command, timeout=timeout
        )
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    raise typer.Exit(out.exit_code)


@app.command("rebuild")
def rebuild(
    server: str,
    image: str = typer.Option(..., help="Image name (`image list`)."),
    tenant: str | None = TenantOption,
    json_out: bool = common.JsonOption,
) -> None:
    """A fresh disk from another image; id, name, port, plan and SSH keys stay."""
    s = common.settings()
    row = find(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.rebuild", target=f"server:{row.id}"):
        common.lxd()
        accepted = rebuild_service.request_rebuild(
            s, tenant_id=None, server_id=row.id or 0, image=image
        )
        run_here(accepted.action, what=f"rebuilding {row.name}")
    if accepted.root_password:
        common.err_console.print(f"root password (shown once): {accepted.root_password}")
    show_after(row.id or 0, json_out)


@app.command("resize")
def resize(
    server: str,
    plan: str = typer.Option(..., help="Plan name (`plan list`)."),
    tenant: str | None = TenantOption,
    json_out: bool = common.JsonOption,
) -> None:
    """Another plan: quota and capacity checked first, limits changed live."""
    s = common.settings()
    row = find(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.resize", target=f"server:{row.id}"):
        accepted = resize_service.request_resize(
            s, common.lxd(), tenant_id=None, server_id=row.id or 0, plan=plan
        )
        run_here(accepted.action, what=f"resizing {row.name}")
    show_after(row.id or 0, json_out)


@app.command("unthrottle")
def unthrottle(
    server: str,
    reset: bool = typer.Option(
        False, "--reset", help="also count the month's transfer allowance again from now"
    ),
    tenant: str | None = TenantOption,
) -> None:
    """Lift a server's transfer throttle for the rest of the month (or reset its allowance)."""
    s = common.settings()
    row = find(server, tenant)
    action = "server.unthrottle"
    with audit.audited(s, actor=CLI_ACTOR, action=action, target=f"server:{row.id}"):
        event = allowance.unthrottle(s, common.lxd(), server_id=row.id or 0, reset=reset, by="cli")
    common.console.print(f"server {row.id}: {event.message}")


@app.command("protect")
def protect(
    server: str,
    delete: bool | None = typer.Option(None, "--delete/--no-delete"),
    rebuild: bool | None = typer.Option(None, "--rebuild/--no-rebuild"),
    tenant: str | None = TenantOption,
) -> None:
    """Turn delete and/or rebuild protection on or off."""
    s = common.settings()
    row = find(server, tenant)
    with audit.audited(s, actor=CLI_ACTOR, action="server.protect", target=f"server:{row.id}"):
        done = protection.change_protection(
            s, tenant_id=None, server_id=row.id or 0, delete=delete, rebuild=rebuild
        )
    common.console.print(
        f"server {done.id}: delete protection {done.delete_protection}, "
        f"rebuild protection {done.rebuild_protection}"
    )
