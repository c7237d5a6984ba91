"""Inside a VPS: run a command as root (bounded in time and output) or open a root shell."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server
from containervps.errors import Conflict, ExecLimitExceeded, InvalidInput
from containervps.lxd import InteractiveExec, Lxd
from containervps.services.actions.intake import ensure_idle
from containervps.services.servers.queries import get_server
from containervps.services.servers.states import ServerState

__all__ = ["ExecOutcome", "open_shell", "run_command"]

MAX_ARGS = 256
MAX_ARG_CHARS = 8192
SHELL = ["/bin/sh", "-c", "if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l"]


@dataclass(frozen=True)
class ExecOutcome:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float


def _usable(settings: Settings, *, server_id: int, tenant_id: int | None) -> Server:
    """A running server with no action in flight (NotFound for another tenant's id)."""
    server = get_server(settings, server_id=server_id, tenant_id=tenant_id)
    with session_scope(settings) as session:
        ensure_idle(session, server_id)
    if server.status != ServerState.RUNNING:
        raise Conflict(
            f"server {server_id} is {server.status}, not running",
            details={"status": server.status},
            resolution="power it on first",
        )
    return server


def _validate(settings: Settings, command: list[str], timeout: float | None) -> float:
    if not command or len(command) > MAX_ARGS or any(len(a) > MAX_ARG_CHARS for a in command):
        raise InvalidInput(
            f"command must be 1-{MAX_ARGS} arguments of at most {MAX_ARG_CHARS} characters",
            details={"field": "command"},
        )
    if any("\x00" in a for a in command):
        raise InvalidInput("command arguments cannot contain NUL", details={"field": "command"})
    limit = settings.exec_timeout_seconds
    if timeout is None:
        return limit
    if not 1 <= timeout <= limit:
        raise InvalidInput(
            f"timeout must be between 1 and {limit:g} seconds",
            details={"field": "timeout", "max": limit},
        )
    return timeout


def run_command(
    settings: Settings,
    lxd: Lxd,
    *,
    server_id: int,
    tenant_id: int | None,
    command: list[str],
    timeout: float | None = None,
) -> ExecOutcome:
    """Run ``command`` as root; ExecLimitExceeded (with what it printed) past a limit."""
    seconds = _validate(settings, command, timeout)
    server = _usable(settings, server_id=server_id, tenant_id=tenant_id)
    limit = settings.exec_max_output_bytes
    result = lxd.streams.run_bounded(
        name=server.lxd_name,
        project=server.lxd_project,
        command=command,
        timeout=seconds,
        max_output=limit,
    )
    stdout = result.stdout.decode(errors="replace")
    stderr = result.stderr.decode(errors="replace")
    if result.overflowed:
        raise ExecLimitExceeded(
            f"the command printed more than {limit} bytes and was killed",
            details={
                "limit": "exec_output_bytes",
                "max": limit,
                "stdout": stdout,
                "stderr": stderr,
            },
            resolution="redirect large output to a file inside the server",
        )
    if result.timed_out:
        raise ExecLimitExceeded(
            f"the command ran longer than {seconds:g} seconds and was killed",
            details={"limit": "exec_seconds", "max": seconds, "stdout": stdout, "stderr": stderr},
            resolution=f"at most {seconds:g} s here: run long jobs over ssh or the console",
        )
    return ExecOutcome(result.exit_code, stdout, stderr, round(result.seconds, 3))


@contextmanager
def open_shell(
    settings: Settings,
    lxd: Lxd,
    *,
    server_id: int,
    tenant_id: int | None,
    width: int = 80,
    height: int = 24,
) -> Iterator[InteractiveExec]:
    """An interactive root login shell on a pty inside the server (hung up on exit)."""
    server = _usable(settings, server_id=server_id, tenant_id=tenant_id)
    with lxd.streams.interactive(
        name=server.lxd_name,
        project=server.lxd_project,
        command=SHELL,
        environment={"TERM": "xterm-256color", "HOME": "/root", "USER": "root"},
        width=width,
        height=height,
    ) as session:
        yield session
