"""Instances (system containers): create, power, exec, update, delete."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from containervps.errors import LxdError, LxdNotFound
from containervps.lxd.client import LxdApi
from containervps.lxd.idmaps import in_subuid_range
from containervps.lxd.instance_logs import InstanceLogs
from containervps.lxd.locks import instance_create_lock
from containervps.lxd.types import ExecResult, InstanceInfo, InstanceState

TAG_PREFIX = "user.containervps."
IDMAP_ATTEMPTS = 3  # LXD 5.0.2 hands out an unusable map now and then (idmaps.py)

log = logging.getLogger(__name__)
T = TypeVar("T")


def _info(meta: dict[str, Any], project: str) -> InstanceInfo:
    state = meta.get("state")
    return InstanceInfo(
        name=meta["name"],
        project=project,
        status=meta["status"],
        # An instance on a member LXD cannot reach is listed with nulls and status "Error".
        config=dict(meta.get("config") or {}),
        devices=dict(meta.get("devices") or {}),
        profiles=tuple(meta.get("profiles") or ()),
        last_used_at=str(meta.get("last_used_at", "")),
        created_at=str(meta.get("created_at", "")),
        location=str(meta.get("location") or ""),
        state=_state({"status": meta["status"], **state}) if state else None,
    )


def _state(meta: dict[str, Any]) -> InstanceState:
    eth0 = (meta.get("network") or {}).get("eth0", {})
    addresses = eth0.get("addresses", [])
    counters = eth0.get("counters") or {}
    return InstanceState(
        status=meta["status"],
        pid=int(meta.get("pid") or 0),
        memory_usage_bytes=int((meta.get("memory") or {}).get("usage") or 0),
        cpu_usage_ns=int((meta.get("cpu") or {}).get("usage") or 0),
        ipv4=tuple(a["address"] for a in addresses if a.get("family") == "inet"),
        processes=int(meta.get("processes") or 0),
        disk_usage_bytes=int(((meta.get("disk") or {}).get("root") or {}).get("usage") or 0),
        net_rx_bytes=int(counters.get("bytes_received") or 0),
        net_tx_bytes=int(counters.get("bytes_sent") or 0),
    )


# After a server stops from inside, LXD reports it Stopped while its own "stop" operation
# still runs for a few seconds (1.8 s measured) and refuses a start, stop or delete meanwhile.
BUSY = "is busy running a"

# LXD gives up waiting on an instance's own operation after 30 s without progress and answers
# 'Instance "start" operation timed out after 30s', while the start or stop may still go on
# (seen once in CI, on a host busy with btrfs clean-up). Such a call waits for the outcome.
LAPSED = "operation timed out after"
LAPSE_WAIT = 90.0  # seconds to wait for the state a lapsed call asked for


def retry_while_busy(call: Callable[[], T], *, seconds: float = 30.0) -> T:
    """``call()``, again every 0.5 s while LXD answers that another operation holds the
    instance, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except LxdError as exc:
            if BUSY not in str(exc) or time.monotonic() > deadline:
                raise
            log.info("instance busy; retried", extra={"error": str(exc)})
            time.sleep(0.5)


class Instances:
    """LXD instances in a given project."""

    def __init__(self, api: LxdApi, *, create_lock: Path, logs: InstanceLogs) -> None:
        self.api = api
        self.create_lock = create_lock
        self.logs = logs

    def create(
        self,
        *,
        name: str,
        project: str,
        image: str,
        profiles: list[str],
        config: dict[str, str] | None = None,
        devices: dict[str, dict[str, str]] | None = None,
        tags: dict[str, str] | None = None,
        start: bool = False,
        target: str | None = None,
    ) -> InstanceInfo:
        """Create a container from a local image alias or fingerprint (optionally start it);
        ``target``: the cluster member to create it on (clusters only)."""
        full_config = dict(config or {})
        full_config.update({TAG_PREFIX + k: v for k, v in (tags or {}).items()})
        body = {
            "name": name,
            "type": "container",
            "source": {"type": "image", "alias": image}
            if len(image) != 64
            else {"type": "image", "fingerprint": image},
            "profiles": profiles,
            "config": full_config,
            "devices": devices or {},
        }
        with instance_create_lock(self.create_lock):  # see locks.py: idmap allocation race
            for _ in range(IDMAP_ATTEMPTS):
                self.api.request(
                    "post",
                    "/instances",
                    project=project,
                    json=body,
                    params={"target": target} if target else None,
                    what=f"create instance {name}",
                )
                meta = self.api.request(
                    "get", f"/instances/{name}", project=project, what=f"read instance {name}"
                )
                info = _info(meta, project)
                expanded = meta.get("expanded_config") or {}  # isolation comes from a profile
                if in_subuid_range(expanded):
                    break
                log.warning(
                    "LXD gave an idmap outside root's subuid range; making the container again",
                    extra={"instance": name, "base": expanded.get("volatile.idmap.base")},
                )
                self.delete(name=name, project=project)
            else:
                raise LxdError(
                    f"create instance {name}: LXD gave it an idmap outside root's subuid range "
                    f"{IDMAP_ATTEMPTS} times",
                    resolution="see `containervps host check` (subuid range); retry the create",
                )
        if start:
            self.set_state(name=name, project=project, action="start")
            info = self.get(name=name, project=project)
        return info

    def get(self, *, name: str, project: str) -> InstanceInfo:
        meta = self.api.request(
            "get", f"/instances/{name}", project=project, what=f"read instance {name}"
        )
        return _info(meta, project)

    def exists(self, *, name: str, project: str) -> bool:
        try:
            self.get(name=name, project=project)
        except LxdNotFound:
            return False
        return True

    def all(self, *, project: str) -> list[InstanceInfo]:
        metas = self.api.request(
            "get",
            "/instances",
            project=project,
            params={"recursion": "1"},
            what=f"list instances in {project}",
        )
        return [_info(m, project) for m in metas]

    def everywhere(self, *, state: bool = False) -> list[InstanceInfo]:
        """Every instance of every project, in one request; with ``state``, each with its
        live state (on a cluster, every member answers for its own instances)."""
        metas = self.api.request(
            "get",
            "/instances",
            params={"recursion": "2" if state else "1", "all-projects": "true"},
            what="list instances of all projects",
        )
        return [_info(m, m.get("project") or "default") for m in metas]

    def state(self, *, name: str, project: str) -> InstanceState:
        """Live state: status, memory, CPU time and IPv4 addresses on eth0."""
        meta = self.api.request(
            "get", f"/instances/{name}/state", project=project, what=f"read state of {name}"
        )
        return _state(meta)

    def wait_for_ipv4(self, *, name: str, project: str, timeout: float = 60.0) -> str:
        """The first IPv4 address of eth0, waiting for DHCP up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            addresses = self.state(name=name, project=project).ipv4
            if addresses:
                return addresses[0]
            if time.monotonic() >= deadline:
                raise LxdError(
                    f"{name} got no IPv4 address within {timeout:.0f}s",
                    resolution="check the bridge's DHCP (dnsmasq) and the image's network set-up",
                )
            time.sleep(0.3)

    def set_state(
        self, *, name: str, project: str, action: str, force: bool = False, timeout: int = 30
    ) -> None:
        """start | stop | restart | freeze | unfreeze; ``timeout`` bounds a clean stop."""
        try:
            self.api.request(
                "put",
                f"/instances/{name}/state",
                project=project,
                json={"action": action, "force": force, "timeout": timeout},
                what=f"{action} instance {name}",
            )
        except LxdError as exc:
            # A clean stop or restart that lapses is left to the caller, which then goes hard.
            hard = {"stop": "Stopped", "restart": "Running"} if force else {}
            target = {"start": "Running", **hard}.get(action)
            if LAPSED not in str(exc) or target is None:
                raise
            if not self._reaches(name=name, project=project, status=target):
                raise
            log.warning("LXD's operation lapsed; the instance got there", extra={"error": str(exc)})

    def _reaches(self, *, name: str, project: str, status: str) -> bool:
        """Whether the instance shows ``status`` within ``LAPSE_WAIT`` seconds."""
        deadline = time.monotonic() + LAPSE_WAIT
        while self.get(name=name, project=project).status != status:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        return True

    def update(
        self,
        *,
        name: str,
        project: str,
        config: dict[str, str] | None = None,
        devices: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """Patch config keys and/or whole devices (applied live where LXD allows)."""
        body: dict[str, Any] = {}
        if config is not None:
            body["config"] = config
        if devices is not None:
            body["devices"] = devices
        self.api.request(
            "patch", f"/instances/{name}", project=project, json=body, what=f"update {name}"
        )

    def remove_device(self, *, name: str, project: str, device: str) -> None:
        """Drop one device of the instance's own (a PATCH cannot remove; a PUT replaces)."""
        meta = self.api.request(
            "get", f"/instances/{name}", project=project, what=f"read instance {name}"
        )
        if device not in meta.get("devices", {}):
            return
        keep = ("architecture", "config", "ephemeral", "profiles", "description")
        body = {key: meta[key] for key in keep if key in meta}
        body["devices"] = {k: v for k, v in meta["devices"].items() if k != device}
        self.api.request(
            "put", f"/instances/{name}", project=project, json=body, what=f"update {name}"
        )

    def delete(self, *, name: str, project: str, force: bool = True) -> None:
        """Delete an instance (stopping it first when ``force``) and, on a standalone LXD, the
        log directory LXD leaves behind; absent is fine."""
        try:
            info = self.get(name=name, project=project)
            if force and info.status != "Stopped":
                try:
                    retry_while_busy(
                        lambda: self.set_state(
                            name=name, project=project, action="stop", force=True
                        )
                    )
                except LxdNotFound:
                    raise
                except LxdError:
                    # A VPS that filled its disk quota stops, but LXD's post-stop chown then
                    # fails ("disk quota exceeded"): go on when it did stop.
                    if self.get(name=name, project=project).status != "Stopped":
                        raise
            retry_while_busy(
                lambda: self.api.request(
                    "delete", f"/instances/{name}", project=project, what=f"delete instance {name}"
                )
            )
        except LxdNotFound:
            return
        self.logs.remove(project=project, name=name, location=info.location)

    def exec(
        self,
        *,
        name: str,
        project: str,
        command: list[str],
        timeout: float = 60.0,
        environment: dict[str, str] | None = None,
    ) -> ExecResult:
        """Run a command as root inside the instance and collect its output."""
        meta = (
            self.api.request(
                "post",
                f"/instances/{name}/exec",
                project=project,
                json={
                    "command": command,
                    "environment": environment or {},
                    "record-output": True,
                    "wait-for-websocket": False,
                    "interactive": False,
                },
                what=f"exec in {name}",
                timeout=timeout,
            )
            or {}
        )
        output = meta.get("output", {})
        streams = []
        for fd in ("1", "2"):
            path = output.get(fd)
            if not path:
                streams.append("")
                continue
            streams.append(self.api.raw_get(path, project=project).decode(errors="replace"))
            with contextlib.suppress(LxdError):
                self.api.request("delete", path.removeprefix("/1.0"), project=project)
        return ExecResult(
            exit_code=int(meta.get("return", -1)), stdout=streams[0], stderr=streams[1]
        )
