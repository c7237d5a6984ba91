"""LXD operation websockets: attaching to one, and the one place their errors are translated.

Everything the websockets library and the socket under it can raise (its exceptions, OSError
with TimeoutError, EOFError) becomes a domain error here, as client.py does for pylxd.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, unix_connect

from containervps.errors import LxdError, LxdUnavailable
from containervps.lxd.client import START_HINT, LxdApi

__all__ = ["STREAM_ERRORS", "attach", "translate_stream_errors"]

# What the stream code can raise besides our own errors. TimeoutError is an OSError.
STREAM_ERRORS: tuple[type[Exception], ...] = (WebSocketException, OSError, EOFError)


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # some websockets exceptions format attributes set after __init__
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def translate_stream_errors(what: str) -> Iterator[None]:
    """Turn websockets and socket exceptions raised inside the block into domain errors."""
    try:
        yield
    except (ConnectionRefusedError, FileNotFoundError) as exc:  # no daemon behind the socket
        raise LxdUnavailable(f"{what}: LXD is not answering", resolution=START_HINT) from exc
    except TimeoutError as exc:
        raise LxdUnavailable(f"{what}: LXD did not answer in time", resolution=START_HINT) from exc
    except InvalidStatus as exc:  # LXD refused the upgrade: operation gone or secret wrong
        raise LxdError(f"{what}: LXD refused the stream", details={"lxd": _describe(exc)}) from exc
    except ConnectionClosed as exc:
        raise LxdError(f"{what}: the stream closed", details={"lxd": _describe(exc)}) from exc
    except STREAM_ERRORS as exc:
        raise LxdError(f"{what}: {_describe(exc)}", details={"lxd": _describe(exc)}) from exc


def attach(
    api: LxdApi, op: dict[str, Any], fd: str, *, close_timeout: float, keepalive: bool
) -> ClientConnection:
    """Open one websocket (``fd``: "0", "1", "2" or "control") of an exec operation."""
    try:
        secret = op["metadata"]["fds"][fd]
    except (KeyError, TypeError) as exc:
        raise LxdError(f"exec: LXD gave no stream {fd}", details={"operation": op}) from exc
    uri = f"ws://lxd/1.0/operations/{op['id']}/websocket?secret={secret}"
    with translate_stream_errors(f"exec: attach to its stream {fd}"):
        return unix_connect(
            str(api.socket_path),
            uri,
            legacy=True,
            max_size=None,
            compression=None,
            open_timeout=10,
            close_timeout=close_timeout,
            # Keepalive pings only help long sessions; a bounded exec is over before one.
            ping_interval=20 if keepalive else None,
        )
