"""Every exception the exec and console streams can meet becomes a domain error (lxd/sockets.py),
and a bounded exec whose sockets fail under it still answers with its limit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets import exceptions as ws_exc

from containervps import errors
from containervps.api.errors import status_for
from containervps.lxd import reaper, sockets, streams
from containervps.lxd.sockets import STREAM_ERRORS, translate_stream_errors
from containervps.lxd.streams import InteractiveExec, Streams

# Everything websockets exports (its deprecated legacy aliases are not raised by the sync client).
WEBSOCKETS_ERRORS: list[type[Exception]] = [getattr(ws_exc, name) for name in ws_exc.__all__]
SOCKET_ERRORS: list[type[Exception]] = [
    OSError,
    ConnectionResetError,
    ConnectionAbortedError,
    ConnectionRefusedError,
    BrokenPipeError,
    FileNotFoundError,
    PermissionError,
    TimeoutError,
    socket.timeout,
    socket.gaierror,
    EOFError,
]
FOREIGN = WEBSOCKETS_ERRORS + SOCKET_ERRORS


def _raised(cls: type[Exception]) -> Exception:
    """An instance as the library would raise it; built bare, as the signatures differ."""
    return cls.__new__(cls)


def test_the_list_covers_the_whole_websockets_hierarchy() -> None:
    assert len(WEBSOCKETS_ERRORS) > 20
    assert ws_exc.ConnectionClosedError in WEBSOCKETS_ERRORS
    for cls in FOREIGN:
        assert issubclass(cls, STREAM_ERRORS), cls


@pytest.mark.parametrize("cls", FOREIGN, ids=lambda c: c.__name__)
def test_every_foreign_stream_exception_is_translated(cls: type[Exception]) -> None:
    raised = _raised(cls)
    with pytest.raises(errors.LxdError) as caught, translate_stream_errors("exec: a thing"):
        raise raised
    assert caught.value.__cause__ is raised
    assert caught.value.brief.startswith("exec: a thing")
    assert status_for(caught.value) in (502, 503)


def test_no_daemon_or_no_answer_is_unavailable() -> None:
    for cls in (ConnectionRefusedError, FileNotFoundError, TimeoutError):
        with pytest.raises(errors.LxdUnavailable), translate_stream_errors("attach"):
            raise cls()
    with pytest.raises(errors.LxdError) as caught, translate_stream_errors("attach"):
        raise ws_exc.ConnectionClosedError(None, None)
    assert not isinstance(caught.value, errors.LxdUnavailable)


class _Api:
    """What Streams asks LXD: operations, the instance state (init pid), exit codes."""

    socket_path = Path("/nonexistent/unix.socket")

    def __init__(self) -> None:
        self.paths: list[str] = []

    def start(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        fds = {fd: f"secret-{fd}" for fd in ("0", "1", "2", "control")}
        return {"id": "op1", "metadata": {"fds": fds}}

    def request(self, method: str, path: str, **_: Any) -> Any:
        self.paths.append(path)
        if path.endswith("/state"):
            return {"pid": 4242}
        return {"status": "Success", "metadata": {"return": 137}}

    def wait(self, operation: str, *, what: str, timeout: float | None = None) -> Any:
        return {"return": 0}


class _Socket:
    """A websocket: yields ``chunks``, then (if ``block``) waits until closed, then fails."""

    def __init__(
        self,
        chunks: list[bytes | str] | None = None,
        *,
        block: bool = False,
        fails: Exception | None = None,
    ) -> None:
        self.chunks, self.block, self.fails = chunks or [], block, fails
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes | str]:
        yield from self.chunks
        if self.block:
            self.closed.wait(30)
        if self.fails is not None:
            raise self.fails

    def send(self, message: Any) -> None:
        if self.fails is not None:
            raise self.fails

    def recv(self, timeout: float | None = None) -> bytes | str:
        if self.fails is not None:
            raise self.fails
        raise TimeoutError

    def close(self) -> None:
        self.closed.set()
        if self.fails is not None:
            raise self.fails


def _streams(monkeypatch: pytest.MonkeyPatch, by_fd: dict[str, _Socket]) -> tuple[Streams, list]:
    killed: list[dict[str, Any]] = []

    def kill_marked(**kwargs: Any) -> int:
        killed.append(kwargs)
        return 0

    monkeypatch.setattr(streams, "attach", lambda api, op, fd, **_: by_fd[fd])
    monkeypatch.setattr(reaper, "kill_marked", kill_marked)
    api: Any = _Api()
    return Streams(api), killed


def test_a_flood_whose_sockets_break_under_it_is_an_overflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = ws_exc.ConnectionClosedError(None, None)  # what escaped as a 500 before
    by_fd = {
        "control": _Socket(fails=broken),
        "0": _Socket(fails=broken),
        "1": _Socket([b"y\n" * 1000] * 10, fails=broken),
        "2": _Socket([b"e" * 100], fails=OSError("reset")),
    }
    runner, killed = _streams(monkeypatch, by_fd)
    result = runner.run_bounded(name="c1", project="p", command=["yes"], timeout=5, max_output=4096)
    assert result.overflowed and not result.timed_out
    assert len(result.stdout) + len(result.stderr) == 4096
    assert len(killed) == 1 and killed[0]["init_pid"] == 4242 and len(killed[0]["mark"]) == 32


def test_a_command_past_its_time_is_killed_and_answers_promptly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gone = ws_exc.ConnectionClosedOK(None, None)
    by_fd = {
        "control": _Socket(),
        "0": _Socket(),
        "1": _Socket([b"begun\n"], block=True, fails=gone),  # an escaped child holds it
        "2": _Socket(block=True, fails=gone),
    }
    runner, killed = _streams(monkeypatch, by_fd)
    started = time.monotonic()
    result = runner.run_bounded(name="c1", project="p", command=["x"], timeout=0.3, max_output=99)
    assert time.monotonic() - started < 0.3 + streams.SETTLE_SECONDS + 0.5
    assert result.timed_out and not result.overflowed and result.stdout == b"begun\n"
    assert result.exit_code == -1  # the output never ended: no wait for the operation
    assert killed and all(s.closed.is_set() for s in by_fd.values())


def test_a_command_in_time_is_not_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    by_fd = {"control": _Socket(), "0": _Socket(), "1": _Socket([b"hi\n", ""]), "2": _Socket([""])}
    runner, killed = _streams(monkeypatch, by_fd)
    result = runner.run_bounded(name="c1", project="p", command=["x"], timeout=5, max_output=99)
    assert (result.exit_code, result.stdout, result.timed_out) == (137, b"hi\n", False)
    assert not killed


def test_a_failed_attach_closes_what_was_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = _Socket()

    def attach(api: Any, op: Any, fd: str, **_: Any) -> _Socket:
        if fd == "control":
            return opened
        raise errors.LxdError("exec: attach to its stream 0: refused")

    monkeypatch.setattr(streams, "attach", attach)
    api: Any = _Api()
    with pytest.raises(errors.LxdError):
        Streams(api).run_bounded(name="c1", project="p", command=["x"], timeout=1, max_output=9)
    assert opened.closed.is_set()


@pytest.mark.parametrize("cls", FOREIGN, ids=lambda c: c.__name__)
def test_attach_translates_what_connecting_raises(
    cls: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    def connect(*_: Any, **__: Any) -> None:
        raise _raised(cls)

    monkeypatch.setattr(sockets, "unix_connect", connect)
    api: Any = _Api()
    op = api.start("post", "/x")
    with pytest.raises(errors.LxdError):
        sockets.attach(api, op, "1", close_timeout=1, keepalive=False)


def test_attach_to_a_stream_lxd_did_not_offer_is_an_lxd_error() -> None:
    api: Any = _Api()
    with pytest.raises(errors.LxdError, match="no stream 3"):
        sockets.attach(api, {"id": "op1", "metadata": {}}, "3", close_timeout=1, keepalive=False)


@pytest.mark.parametrize("cls", FOREIGN, ids=lambda c: c.__name__)
def test_the_console_session_never_leaks_a_foreign_exception(cls: type[Exception]) -> None:
    raised = _raised(cls)
    api: Any = _Api()
    sock: Any = _Socket(fails=raised)
    session = InteractiveExec(api, {"id": "op1"}, sock, sock)
    ended = isinstance(raised, ws_exc.ConnectionClosed)
    for call in (lambda: session.send(b"ls\n"), lambda: session.resize(width=80, height=24)):
        if ended:
            call()  # the session is over: input is dropped, recv reports the end
        else:
            with pytest.raises(errors.LxdError):
                call()
    if ended:
        assert session.recv(0.01) is None
    elif isinstance(raised, TimeoutError):
        assert session.recv(0.01) == b""  # the recv timeout: nothing came yet
    else:
        with pytest.raises(errors.LxdError):
            session.recv(0.01)
    session.close()  # hanging up never raises
