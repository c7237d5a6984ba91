"""The low-level LXD API seam: requests, operation waits and exception translation.

Every pylxd/requests exception is translated here, once, into our domain errors.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pylxd
import requests
from pylxd import exceptions as pylxd_exc

from containervps.errors import LxdError, LxdNotFound, LxdUnavailable

log = logging.getLogger(__name__)

DEFAULT_SOCKETS = (Path("/var/lib/lxd/unix.socket"), Path("/var/snap/lxd/common/lxd/unix.socket"))
START_HINT = "start it with `containervps host start` (or run deploy/up)"


def _unavailable(reason: str) -> LxdUnavailable:
    if shutil.which("lxd") is None and shutil.which("lxc") is None:
        return LxdUnavailable(
            "LXD is not installed", resolution="install it with deploy/up (apt-get install lxd)"
        )
    return LxdUnavailable(f"LXD is not answering: {reason}", resolution=START_HINT)


def _lxd_message(exc: pylxd_exc.LXDAPIException) -> str:
    try:
        return str(exc.response.json().get("error") or exc)
    except (ValueError, AttributeError):
        return str(exc)


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn pylxd/requests exceptions raised inside the block into domain errors."""
    try:
        yield
    except pylxd_exc.NotFound as exc:
        raise LxdNotFound(f"{what}: not found", details={"lxd": _lxd_message(exc)}) from exc
    except pylxd_exc.LXDAPIException as exc:
        message = _lxd_message(exc)
        if getattr(exc.response, "status_code", None) == 503:  # "LXD is shutting down"
            raise LxdUnavailable(
                f"{what}: {message}", details={"lxd": message}, resolution=START_HINT
            ) from exc
        raise LxdError(f"{what}: {message}", details={"lxd": message}) from exc
    except pylxd_exc.ClientConnectionFailed as exc:
        raise _unavailable(str(exc)) from exc
    except requests.Timeout as exc:
        raise LxdUnavailable(f"{what}: LXD did not answer in time", resolution=START_HINT) from exc
    except requests.ConnectionError as exc:
        raise _unavailable(str(exc)) from exc


class LxdApi:
    """Thin typed access to LXD's REST API over its unix socket."""

    def __init__(
        self, *, socket: Path | None = None, timeout: float = 30.0, op_timeout: float = 300.0
    ) -> None:
        path = socket or next((p for p in DEFAULT_SOCKETS if p.exists()), DEFAULT_SOCKETS[0])
        if not path.exists():
            raise _unavailable(f"no socket at {path}")
        self.op_timeout = op_timeout
        self.socket_path = path
        with translate_errors("connect to LXD"):
            self.client = pylxd.Client(
                endpoint="http+unix://" + quote(str(path), safe=""), timeout=timeout
            )

    def request(
        self,
        method: str,
        path: str,
        *,
        project: str | None = None,
        json: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        what: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send one request; return the response's ``metadata`` (waiting if it is async)."""
        node: Any = self.client.api
        for segment in filter(None, path.split("/")):
            node = node[segment]
        query = dict(params or {})
        if project:
            query["project"] = project
        kwargs: dict[str, Any] = {"params": query}
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        if headers:
            kwargs["headers"] = headers
        label = what or f"{method.upper()} {path}"
        with translate_errors(label):
            body = getattr(node, method.lower())(**kwargs).json()
        if body.get("type") == "async":
            return self.wait(body["operation"], what=label, timeout=timeout)
        return body.get("metadata")

    def start(
        self, method: str, path: str, *, project: str | None = None, json: Any = None, what: str
    ) -> dict[str, Any]:
        """Send a request that starts an operation; return the operation without waiting."""
        node: Any = self.client.api
        for segment in filter(None, path.split("/")):
            node = node[segment]
        with translate_errors(what):
            body = getattr(node, method.lower())(
                params={"project": project} if project else {}, json=json
            ).json()
        return dict(body["metadata"])

    def wait(self, operation: str, *, what: str, timeout: float | None = None) -> Any:
        """Wait for an LXD operation with an explicit timeout; return its metadata."""
        op_id = operation.rstrip("/").split("/")[-1]
        deadline = time.monotonic() + (timeout or self.op_timeout)
        while True:
            remaining = max(1, int(deadline - time.monotonic()))
            with translate_errors(what):
                op = (
                    self.client.api.operations[op_id]
                    .wait.get(
                        params={"timeout": min(remaining, 30)}, timeout=min(remaining, 30) + 10
                    )
                    .json()["metadata"]
                )
            if op["status"] == "Success":
                return op.get("metadata")
            if op["status"] in ("Failure", "Cancelled"):
                raise LxdError(f"{what}: {op.get('err') or op['status']}", details={"lxd": op})
            if time.monotonic() >= deadline:
                raise LxdError(
                    f"{what}: still running after {timeout or self.op_timeout:.0f}s",
                    details={"operation": op_id},
                    resolution="check `lxc operation list`; raise lxd_operation_timeout",
                )

    def raw_get(self, path: str, *, project: str | None = None) -> bytes:
        """GET a non-JSON resource (exec output logs, files)."""
        node: Any = self.client.api
        for segment in filter(None, path.removeprefix("/1.0").split("/")):
            node = node[segment]
        with translate_errors(f"GET {path}"):
            return bytes(
                node.get(is_api=False, params={"project": project} if project else {}).content
            )
