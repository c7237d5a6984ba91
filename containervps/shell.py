"""Running host commands: the one place that starts processes (with clear errors)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from containervps.errors import HostSetupError
from containervps.private_paths import private_dir, private_file

log = logging.getLogger(__name__)

__all__ = ["Completed", "probe", "require_tool", "run", "run_bytes", "spawn"]

NOT_INSTALLED = 127
TIMED_OUT = 124


@dataclass(frozen=True)
class Completed:
    """What a probed command did (``returncode`` 127: not installed, 124: timed out)."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def require_tool(tool: str, *, package: str) -> str:
    """Path of ``tool`` or a HostSetupError telling which package to install."""
    path = shutil.which(tool)
    if path is None:
        raise HostSetupError(
            f"{tool} is not installed", resolution=f"apt-get install {package} (deploy/up does it)"
        )
    return path


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def probe(
    cmd: Sequence[str],
    *,
    timeout: float = 60,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
) -> Completed:
    """Run a command and report what it did; never raises (for probes and version checks)."""
    log.debug("probe", extra={"cmd": " ".join(cmd)})
    try:
        proc = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:  # the child was killed
        return Completed(TIMED_OUT, _text(exc.stdout), _text(exc.stderr))
    except FileNotFoundError:
        return Completed(NOT_INSTALLED, "", f"{cmd[0]} is not installed")
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def run(
    cmd: Sequence[str],
    *,
    what: str,
    timeout: float = 600,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run a command; return stdout; raise HostSetupError with the tail of stderr on failure."""
    done = probe(cmd, timeout=timeout, input_text=input_text, env=env)
    if done.returncode == TIMED_OUT:
        raise HostSetupError(f"{what}: timed out after {timeout:.0f}s")
    if done.returncode == NOT_INSTALLED and not shutil.which(cmd[0]):
        raise HostSetupError(f"{what}: {cmd[0]} is not installed")
    if not done.ok:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise HostSetupError(
            f"{what} failed: {' | '.join(tail) or f'exit code {done.returncode}'}",
            details={"cmd": list(cmd), "exit_code": done.returncode},
        )
    return done.stdout


def run_bytes(
    cmd: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    input_bytes: bytes | None = None,
    timeout: float = 600,
) -> bytes:
    """Like ``run`` for binary output (archives); raises HostSetupError on failure."""
    try:
        proc = subprocess.run(
            list(cmd), cwd=cwd, input=input_bytes, capture_output=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostSetupError(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        tail = _text(proc.stderr).strip().splitlines()[-3:]
        raise HostSetupError(f"{what} failed: {' | '.join(tail)}", details={"cmd": list(cmd)})
    return proc.stdout


def spawn(
    cmd: Sequence[str],
    *,
    log_file: Path | None = None,
    stdout: int | IO[bytes] | None = None,
    detach: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a process in the background: its output appended to ``log_file`` (or to
    ``stdout``); ``detach`` puts it in a session of its own, so it outlives us."""
    log.debug("spawn", extra={"cmd": " ".join(cmd)})
    if log_file is None:
        return subprocess.Popen(
            list(cmd),
            stdout=subprocess.DEVNULL if stdout is None else stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
            env=env,
        )
    private_dir(log_file.parent)
    with private_file(log_file).open("ab") as out:
        return subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
            close_fds=True,
            env=env,
        )
