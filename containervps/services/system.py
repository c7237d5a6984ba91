"""Running host commands with clear errors (the one place that shells out)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence

from containervps.errors import HostSetupError

log = logging.getLogger(__name__)


def require_tool(tool: str, *, package: str) -> str:
    """Path of ``tool`` or a HostSetupError telling which package to install."""
    path = shutil.which(tool)
    if path is None:
        raise HostSetupError(
            f"{tool} is not installed", resolution=f"apt-get install {package} (deploy/up does it)"
        )
    return path


def run(
    cmd: Sequence[str], *, what: str, timeout: float = 600, input_text: str | None = None
) -> str:
    """Run a command; return stdout; raise HostSetupError with the tail of stderr on failure."""
    log.debug("run", extra={"cmd": " ".join(cmd)})
    try:
        proc = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_text,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise HostSetupError(f"{what}: timed out after {timeout:.0f}s") from exc
    except FileNotFoundError as exc:
        raise HostSetupError(f"{what}: {cmd[0]} is not installed") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise HostSetupError(
            f"{what} failed: {' | '.join(tail) or f'exit code {proc.returncode}'}",
            details={"cmd": list(cmd), "exit_code": proc.returncode},
        )
    return proc.stdout
