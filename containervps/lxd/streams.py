"""Exec over LXD's websockets: bounded commands (time, output) and interactive sessions.

Every websockets and socket error is translated into domain errors (sockets.py); a bounded
command past its limits is killed with everything it started (reaper.py).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from containervps.errors import LxdError
from containervps.lxd import reaper
from containervps.lxd.client import LxdApi
from containervps.lxd.sockets import STREAM_ERRORS, attach, translate_stream_errors

__all__ = ["BoundedExecResult", "InteractiveExec", "Streams"]

SETTLE_SECONDS = 0.5  # after a kill: how long the streams and the operation get to end
# LXD has ended a killed exec's sockets by the time we close them, or never will (something
# the kill could not reach holds them): waiting the default 10 s per socket only holds a thread.
BOUNDED_CLOSE_TIMEOUT = 0.2
SESSION_CLOSE_TIMEOUT = 2.0
OP_WAIT_CHUNK = 10  # whole seconds per LXD operation wait; the last fraction is polled
OP_POLL_SECONDS = 0.05
SIGHUP, SIGKILL = 1, 9


@dataclass(frozen=True)
class BoundedExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    timed_out: bool  # killed because it ran past the time limit
    overflowed: bool  # killed because it printed more than the output limit
    seconds: float


class _Output:
    """stdout and stderr of a bounded exec, read by two threads into one byte budget."""

    def __init__(self, streams: list[ClientConnection], limit: int) -> None:
        self.left, self.overflowed = limit, False
        self.data = [bytearray() for _ in streams]
        self.open = len(streams)
        self.lock = threading.Lock()
        self.changed = threading.Event()  # a stream ended or the budget ran out
        for ws, buffer in zip(streams, self.data, strict=True):
            threading.Thread(target=self._read, args=(ws, buffer), daemon=True).start()

    def _read(self, ws: ClientConnection, buffer: bytearray) -> None:
        try:
            for message in ws:
                if isinstance(message, str):  # LXD's end-of-stream marker
                    return
                self._keep(buffer, message)
        except STREAM_ERRORS:
            return  # closed under us: the command was killed or we hung up
        finally:
            with self.lock:
                self.open -= 1
            self.changed.set()

    def _keep(self, buffer: bytearray, chunk: bytes) -> None:
        with self.lock:
            buffer += chunk[: max(0, self.left)]
            self.left -= len(chunk)
            if self.left < 0 and not self.overflowed:
                self.overflowed = True
                self.changed.set()

    @property
    def finished(self) -> bool:
        with self.lock:
            return self.open == 0

    def wait(self, *, until: float, or_overflow: bool) -> None:
        """Until both streams ended (or the budget ran out) or the time ``until`` came."""
        while True:
            self.changed.clear()  # before the checks: a change after them ends the wait
            if self.finished or (or_overflow and self.overflowed):
                return
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            self.changed.wait(remaining)


class InteractiveExec:
    """A running interactive command (a pty): ``send``/``recv`` bytes, ``resize``, ``close``."""

    def __init__(
        self, api: LxdApi, op: dict[str, Any], data: ClientConnection, control: ClientConnection
    ) -> None:
        self.api, self.op, self.data, self.control = api, op, data, control

    def send(self, payload: bytes) -> None:
        """Type into the session; after the session ended, input is dropped (recv says so)."""
        with translate_stream_errors("console: send"), suppress(ConnectionClosed):
            self.data.send(payload)

    def recv(self, timeout: float) -> bytes | None:
        """Output bytes, b"" when nothing came within ``timeout``, None once it ended."""
        with translate_stream_errors("console: receive"):
            try:
                message = self.data.recv(timeout=timeout)
            except TimeoutError:
                return b""  # our own recv timeout: nothing came yet
            except ConnectionClosed:
                return None  # the session ended
        if isinstance(message, str):  # LXD's end-of-stream marker: the command ended
            return None
        return message

    def resize(self, *, width: int, height: int) -> None:
        """Tell the pty its new size (ignored once the session ended)."""
        size = {"width": str(width), "height": str(height)}
        with translate_stream_errors("console: resize"), suppress(ConnectionClosed):
            self.control.send(json.dumps({"command": "window-resize", "args": size}))

    def close(self) -> None:
        """Hang up: the shell gets SIGHUP; wait briefly for the operation to end."""
        with suppress(*STREAM_ERRORS):  # the shell may have ended already
            self.control.send(json.dumps({"command": "signal", "signal": SIGHUP}))
        for ws in (self.data, self.control):
            with suppress(*STREAM_ERRORS):
                ws.close()
        with suppress(LxdError):
            self.api.wait(self.op["id"], what="interactive exec", timeout=10)


class Streams:
    """Exec through websockets (needed for limits and terminals; record-output has neither)."""

    def __init__(self, api: LxdApi) -> None:
        self.api = api

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

    def _attach_all(
        self, op: dict[str, Any], fds: tuple[str, ...], *, close_timeout: float, keepalive: bool
    ) -> list[ClientConnection]:
        """All the named websockets of an operation, or none (those opened are closed)."""
        opened: list[ClientConnection] = []
        try:
            for fd in fds:
                opened.append(
                    attach(self.api, op, fd, close_timeout=close_timeout, keepalive=keepalive)
                )
        except BaseException:
            _close_all(opened)
            raise
        return opened

    def _exit_code(self, op_id: str, *, until: float, what: str) -> int | None:
        """The command's exit code once LXD has it; None while it still runs at ``until``."""
        while True:
            remaining = until - time.monotonic()
            seconds = min(int(remaining), OP_WAIT_CHUNK)  # LXD waits whole seconds
            path = f"/operations/{op_id}" + ("/wait" if seconds > 0 else "")
            params = {"timeout": str(seconds)} if seconds > 0 else None
            op = self.api.request("get", path, params=params, what=what)
            if op["status"] != "Running":
                return int((op.get("metadata") or {}).get("return", -1))
            if remaining <= 0:
                return None
            if seconds <= 0:
                time.sleep(min(OP_POLL_SECONDS, remaining))

    def _kill(self, control: ClientConnection, *, name: str, project: str, mark: str) -> None:
        """Kill every process the exec started, those that left its process group too."""
        state = self.api.request(
            "get", f"/instances/{name}/state", project=project, what=f"read state of {name}"
        )
        reaper.kill_marked(init_pid=int((state or {}).get("pid") or 0), mark=mark)
        # LXD signals the one process it started: all that is left when the host cannot see
        # the container's processes (reaper.py), harmless after the sweep.
        with suppress(*STREAM_ERRORS):
            control.send(json.dumps({"command": "signal", "signal": SIGKILL}))

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
        """Run a command; past ``timeout`` seconds or ``max_output`` bytes kill all it started.

        What the kill cannot reach and still holds the output cannot hold the caller: the
        result then comes with exit code -1, at most about a second past the limit.
        """
        mark = secrets.token_hex(16)
        what = f"exec in {name}"
        op = self._start(
            name=name,
            project=project,
            command=command,
            environment={**(environment or {}), reaper.MARK_VARIABLE: mark},
            interactive=False,
        )
        started = time.monotonic()
        deadline = started + timeout
        sockets = self._attach_all(
            op, ("control", "0", "1", "2"), close_timeout=BOUNDED_CLOSE_TIMEOUT, keepalive=False
        )
        control, stdin = sockets[:2]
        try:
            # An empty text message is LXD's end-of-file; closing the socket instead makes LXD
            # 5.0 hold all output back until the command ends (so no live output limit). A
            # command that already ended may have had LXD close stdin first.
            with suppress(*STREAM_ERRORS):
                stdin.send("")
            output = _Output(sockets[2:], max_output)
            output.wait(until=deadline, or_overflow=True)
            code: int | None = None
            if output.finished and not output.overflowed:
                # Output closed: the command may still run (`exec >&-; sleep 60`).
                code = self._exit_code(op["id"], until=deadline, what=what)
            killed = code is None
            if killed:
                self._kill(control, name=name, project=project, mark=mark)
                settle = time.monotonic() + SETTLE_SECONDS
                output.wait(until=settle, or_overflow=False)
                if output.finished:  # else something unreached holds the output: no wait
                    code = self._exit_code(op["id"], until=settle, what=what)
        finally:
            _close_all(sockets)
        return BoundedExecResult(
            exit_code=-1 if code is None else code,
            stdout=bytes(output.data[0]),
            stderr=bytes(output.data[1]),
            timed_out=killed and not output.overflowed,
            overflowed=output.overflowed,
            seconds=time.monotonic() - started,
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
        data, control = self._attach_all(
            op, ("0", "control"), close_timeout=SESSION_CLOSE_TIMEOUT, keepalive=True
        )
        session = InteractiveExec(self.api, op, data, control)
        try:
            yield session
        finally:
            session.close()


def _close_all(sockets: list[ClientConnection]) -> None:
    for ws in sockets:
        with suppress(*STREAM_ERRORS):
            ws.close()
