"""Exec over LXD's websockets: bounded commands (time, output) and interactive sessions."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, unix_connect

from containervps.errors import LxdError
from containervps.lxd.client import LxdApi

__all__ = ["BoundedExecResult", "InteractiveExec", "Streams"]

READ_CHUNK_TIMEOUT = 0.1
GRACE_SECONDS = 3  # past the time limit, how long we wait for the streams to close
# Runs "$@" as its own session/process group and SIGKILLs the whole group after $1 seconds
# or when it gets SIGTERM (our output limit); POSIX sh, so BusyBox and Debian alike.
BOUNDED_WRAPPER = """\
t=$1; shift
setsid "$@" &
child=$!
trap 'kill -KILL -$child 2>/dev/null' TERM
( sleep "$t"; kill -KILL -$child ) >/dev/null 2>&1 </dev/null &
watchdog=$!
wait $child
rc=$?
kill $watchdog 2>/dev/null
exit $rc
"""


@dataclass(frozen=True)
class BoundedExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    timed_out: bool  # killed because it ran past the time limit
    overflowed: bool  # killed because it printed more than the output limit
    seconds: float


class _Reader(threading.Thread):
    """Collects one output stream up to a shared byte budget."""

    def __init__(self, ws: ClientConnection, budget: _Budget) -> None:
        super().__init__(daemon=True)
        self.ws, self.budget, self.data = ws, budget, bytearray()

    def run(self) -> None:
        try:
            for message in self.ws:
                if isinstance(message, str):  # LXD's end-of-stream marker
                    return
                self.data += self.budget.take(message)
        except (ConnectionClosed, OSError):
            return


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left, self.overflowed = limit, False
        self.lock = threading.Lock()

    def take(self, chunk: bytes) -> bytes:
        with self.lock:
            kept = chunk[: max(0, self.left)]
            self.left -= len(chunk)
            if self.left < 0:
                self.overflowed = True
            return kept


class InteractiveExec:
    """A running interactive command (a pty): ``send``/``recv`` bytes, ``resize``, ``close``."""

    def __init__(
        self, api: LxdApi, op: dict[str, Any], data: ClientConnection, control: ClientConnection
    ) -> None:
        self.api, self.op, self.data, self.control = api, op, data, control

    def send(self, payload: bytes) -> None:
        self.data.send(payload)

    def recv(self, timeout: float) -> bytes | None:
        """Output bytes, b"" when nothing came within ``timeout``, None once it ended."""
        try:
            message = self.data.recv(timeout=timeout)
        except TimeoutError:
            return b""
        except ConnectionClosed:
            return None
        if isinstance(message, str):  # LXD's end-of-stream marker: the command ended
            return None
        return message

    def resize(self, *, width: int, height: int) -> None:
        self.control.send(
            json.dumps(
                {"command": "window-resize", "args": {"width": str(width), "height": str(height)}}
            )
        )

    def close(self) -> None:
        """Hang up: the shell gets SIGHUP; wait briefly for the operation to end."""
        with suppress(ConnectionClosed, OSError):  # the shell may have ended already
            self.control.send(json.dumps({"command": "signal", "signal": 1}))
        for ws in (self.data, self.control):
            ws.close()
        with suppress(LxdError):
            self.api.wait(self.op["id"], what="interactive exec", timeout=10)


class Streams:
    """Exec through websockets (needed for limits and terminals; record-output has neither)."""

    def __init__(self, api: LxdApi) -> None:
        self.api = api

    def _connect(self, op: dict[str, Any], fd: str) -> ClientConnection:
        secret = op["metadata"]["fds"][fd]
        uri = f"ws://lxd/1.0/operations/{op['id']}/websocket?secret={secret}"
        try:
            return unix_connect(
                str(self.api.socket_path),
                uri,
                legacy=True,
                max_size=None,
                compression=None,
                open_timeout=10,
            )
        except (WebSocketException, OSError, TimeoutError) as exc:
            raise LxdError(f"exec: could not attach to its stream {fd}: {exc}") from exc

    def _start(
        self,
        *,
        name: str,
        project: str,
        command: list[str],
        environment: dict[str, str],
        interactive: bool,
        width: int = 80,
        height: int = 24,
    ) -> dict[str, Any]:
        return self.api.start(
            "post",
            f"/instances/{name}/exec",
            project=project,
            json={
                "command": command,
                "environment": environment,
                "wait-for-websocket": True,
                "interactive": interactive,
                "record-output": False,
                "width": width,
                "height": height,
            },
            what=f"exec in {name}",
        )

    def run_bounded(
        self,
        *,
        name: str,
        project: str,
        command: list[str],
        timeout: float,
        max_output: int,
        environment: dict[str, str] | None = None,
    ) -> BoundedExecResult:
        """Run a command; kill its whole process group past ``timeout`` or ``max_output`` bytes.

        A process that leaves the group (setsid) and keeps the output open cannot hold the
        caller: past the grace period the result is returned with exit code -1.
        """
        seconds_limit = max(1, int(timeout))
        wrapped = ["sh", "-c", BOUNDED_WRAPPER, "cvps-exec", str(seconds_limit), *command]
        op = self._start(
            name=name,
            project=project,
            command=wrapped,
            environment=environment or {},
            interactive=False,
        )
        started = time.monotonic()
        control = self._connect(op, "control")
        stdin, out, err = (self._connect(op, fd) for fd in ("0", "1", "2"))
        # An empty text message is LXD's end-of-file; closing the socket instead makes LXD 5.0
        # hold all output back until the command ends (so no live output limit). A command
        # that already ended may have had LXD close stdin first (seen with `true` under load).
        with contextlib.suppress(WebSocketException, EOFError, OSError):
            stdin.send("")
        budget = _Budget(max_output)
        readers = [_Reader(out, budget), _Reader(err, budget)]
        for reader in readers:
            reader.start()
        deadline = started + seconds_limit + GRACE_SECONDS
        signalled = False
        while any(r.is_alive() for r in readers) and time.monotonic() < deadline:
            if budget.overflowed and not signalled:
                control.send(json.dumps({"command": "signal", "signal": 15}))
                signalled = True
            readers[0].join(READ_CHUNK_TIMEOUT)
        for ws in (stdin, out, err, control):
            ws.close()
        try:
            meta = self.api.wait(op["id"], what=f"exec in {name}", timeout=GRACE_SECONDS)
            code = int((meta or {}).get("return", -1))
        except LxdError:
            code = -1  # something escaped the process group and still holds the output
        seconds = time.monotonic() - started
        return BoundedExecResult(
            exit_code=code,
            stdout=bytes(readers[0].data),
            stderr=bytes(readers[1].data),
            timed_out=not budget.overflowed and code in (-1, 137) and seconds >= seconds_limit,
            overflowed=budget.overflowed,
            seconds=seconds,
        )

    @contextmanager
    def interactive(
        self,
        *,
        name: str,
        project: str,
        command: list[str],
        environment: dict[str, str],
        width: int = 80,
        height: int = 24,
    ) -> Iterator[InteractiveExec]:
        """An interactive command with a pty, closed (hung up) on leaving the block."""
        op = self._start(
            name=name,
            project=project,
            command=command,
            environment=environment,
            interactive=True,
            width=width,
            height=height,
        )
        session = InteractiveExec(
            self.api, op, self._connect(op, "0"), self._connect(op, "control")
        )
        try:
            yield session
        finally:
            session.close()
