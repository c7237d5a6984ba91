"""Frozen values returned by the LXD wrapper (never pylxd objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServerInfo:
    version: str
    storage_drivers: tuple[str, ...]
    kernel_version: str
    instance_types: tuple[str, ...]
    kernel_features: dict[str, str]


STANDALONE = ("", "none")  # an instance's location outside a cluster


@dataclass(frozen=True)
class InstanceInfo:
    name: str
    project: str
    status: str  # "Running", "Stopped", ...
    config: dict[str, str]
    devices: dict[str, dict[str, str]]
    profiles: tuple[str, ...]
    last_used_at: str = ""  # RFC 3339: its last start
    created_at: str = ""  # RFC 3339, as LXD reports it
    location: str = ""  # the cluster member it is on ("none" outside a cluster)
    state: InstanceState | None = None  # live state, when the listing asked for it

    @property
    def clustered(self) -> bool:
        """On an LXD cluster member (whose NIC, cgroups and disk this host may not see)."""
        return self.location not in STANDALONE

    def tag(self, key: str) -> str | None:
        """A ``user.containervps.<key>`` tag, if set."""
        return self.config.get(f"user.containervps.{key}")


@dataclass(frozen=True)
class InstanceState:
    status: str
    pid: int
    memory_usage_bytes: int
    cpu_usage_ns: int
    ipv4: tuple[str, ...]
    processes: int
    disk_usage_bytes: int = 0  # root disk, as the storage driver reports it
    net_rx_bytes: int = 0  # eth0 counters, from the host side
    net_tx_bytes: int = 0


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class ImageInfo:
    fingerprint: str
    aliases: tuple[str, ...]
    properties: dict[str, str]
    size_bytes: int
    uploaded_at: str


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    managed: bool
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoragePoolInfo:
    name: str
    driver: str
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileInfo:
    name: str
    config: dict[str, str]
    devices: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ClusterMemberInfo:
    """One member of an LXD cluster, as LXD reports it."""

    name: str
    url: str  # https://<address>:<port>
    status: str  # "Online", "Evacuated", "Offline", ...
    message: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]
    config: dict[str, str]


@dataclass(frozen=True)
class MemberResources:
    """What one member's machine has (LXD's /1.0/resources)."""

    cpu_threads: int
    memory_bytes: int
    disk_bytes: int  # the sum of its disks
