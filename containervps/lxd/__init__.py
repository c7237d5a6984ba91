"""The only package that talks to LXD (through pylxd)."""

from __future__ import annotations

from pathlib import Path

from containervps.config import Settings
from containervps.lxd.client import LxdApi
from containervps.lxd.cluster import ClusterObjects
from containervps.lxd.files import Files
from containervps.lxd.host import HostObjects
from containervps.lxd.images import Images
from containervps.lxd.instance_logs import InstanceLogs
from containervps.lxd.instances import TAG_PREFIX, Instances, retry_while_busy
from containervps.lxd.names import (
    group_project,
    instance_pool,
    is_tenant_project,
    pool_owner,
    storage_name,
)
from containervps.lxd.operations import Operations
from containervps.lxd.snapshots import Snapshots
from containervps.lxd.streams import BoundedExecResult, InteractiveExec, Streams
from containervps.lxd.types import (
    ClusterMemberInfo,
    ExecResult,
    ImageInfo,
    InstanceInfo,
    InstanceState,
    MemberResources,
    NetworkInfo,
    ProfileInfo,
    ServerInfo,
    StoragePoolInfo,
)

__all__ = [
    "TAG_PREFIX",
    "BoundedExecResult",
    "ClusterMemberInfo",
    "ExecResult",
    "ImageInfo",
    "InstanceInfo",
    "InstanceState",
    "InteractiveExec",
    "Lxd",
    "MemberResources",
    "NetworkInfo",
    "ProfileInfo",
    "ServerInfo",
    "StoragePoolInfo",
    "connect",
    "connect_socket",
    "group_project",
    "instance_pool",
    "is_tenant_project",
    "pool_owner",
    "retry_while_busy",
    "storage_name",
]


class Lxd:
    """Facade: ``lxd.host``, ``lxd.instances``, ``lxd.images``, ``lxd.files``, ..."""

    def __init__(self, api: LxdApi, *, create_lock: Path, log_dir: Path) -> None:
        self.api = api
        self.host = HostObjects(api)
        self.instances = Instances(api, create_lock=create_lock, logs=InstanceLogs(log_dir))
        self.images = Images(api)
        self.operations = Operations(api)
        self.files = Files(api)
        self.streams = Streams(api)
        self.snapshots = Snapshots(api, create_lock=create_lock)
        self.cluster = ClusterObjects(api)


def connect(settings: Settings) -> Lxd:
    """Connect to the local LXD daemon (raises LxdUnavailable when it is not there)."""
    return connect_socket(settings, settings.lxd_socket)


def connect_socket(settings: Settings, socket: Path | None) -> Lxd:
    """Connect to the LXD daemon answering on ``socket`` (None: the default local socket)."""
    return Lxd(
        LxdApi(
            socket=socket,
            timeout=settings.lxd_timeout,
            op_timeout=settings.lxd_operation_timeout,
        ),
        create_lock=settings.lxd_create_lock,
        log_dir=settings.lxd_log_dir,
    )
