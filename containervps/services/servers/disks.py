"""A server's root disk, in one of two layouts (the operator's `disk_layout` setting).

- shared (default): a volume of the shared pool. btrfs quota groups enforce its size, and
  `df /` inside shows the whole pool. Nothing per server beyond the volume.
- per_server: a pool of its own on a loop file of the plan's size, grown and shrunk online on
  resize, so `df /` shows the plan's size, as Proxmox does with raw images. This kernel has no
  device-mapper (LVM thin), no ZFS and no CONFIG_QUOTA (ext4/XFS project quotas), so a
  filesystem per server is the only way to that view; it costs a loop device, a mount and its
  slab per server (measured by `bench scale --disk-layout per_server`).

A server keeps the layout it was made with: a pool of its own, when it has one, is used on
rebuild, resize and delete. A `dir` fallback host does not enforce sizes (`host check` says so).
"""

from __future__ import annotations

import logging
import os

from containervps.config import Settings
from containervps.db.models import Server
from containervps.errors import Conflict, HostSetupError
from containervps.lxd import TAG_PREFIX, Lxd, StoragePoolInfo, instance_pool
from containervps.shell import run

log = logging.getLogger(__name__)

__all__ = [
    "delete_disk",
    "disk_used_bytes",
    "drop_image_copies",
    "ensure_disk",
    "pool_name",
    "resize_disk",
]

TAG = TAG_PREFIX + "server_id"


def pool_name(server: Server) -> str:
    """The server's own pool (unique on the host)."""
    return instance_pool(server.lxd_project, server.lxd_name)


def ensure_disk(settings: Settings, lxd: Lxd, server: Server) -> str:
    """The pool for the server's root disk: the shared one, or (per_server layout, or a server
    made with it) its own, created unless it exists and tagged with the server id."""
    name = pool_name(server)
    pool = lxd.host.get_pool(name)
    if pool is None and settings.disk_layout == "shared":
        return settings.storage_pool
    if pool is None:
        shared = lxd.host.get_pool(settings.storage_pool)
        driver = shared.driver if shared else settings.storage_driver
        config = {TAG: str(server.id)}
        if driver == "btrfs":
            config["size"] = f"{server.disk_gib}GiB"
        lxd.host.create_pool(name=name, driver=driver, config=config)
    elif pool.config.get(TAG) != str(server.id):
        raise Conflict(
            f"storage pool {name} exists and is not server {server.id}'s",
            resolution="run `containervps reconcile` to remove pools of deleted servers",
        )
    return name


def drop_image_copies(lxd: Lxd, server: Server) -> None:
    """Free the image copy LXD unpacked into the server's pool (the container keeps its own
    blocks, and a rebuild must not find an old image taking the tenant's space)."""
    if lxd.host.get_pool(pool_name(server)) is not None:
        lxd.host.delete_image_volumes(pool_name(server))


def delete_disk(lxd: Lxd, server: Server) -> None:
    """Delete the server's pool (after its instance); absent or not ours is left alone."""
    pool = lxd.host.get_pool(pool_name(server))
    if pool is not None and pool.config.get(TAG) == str(server.id):
        lxd.host.delete_pool(pool.name)


def disk_used_bytes(lxd: Lxd, server: Server) -> int:
    """Bytes used on the server's filesystem (what `df /` inside shows, snapshots included),
    after a sync inside so that recent writes are counted."""
    name, project = server.lxd_name, server.lxd_project
    if lxd.instances.get(name=name, project=project).status == "Running":
        lxd.instances.exec(name=name, project=project, command=["sync"], timeout=60)
    if lxd.host.get_pool(pool_name(server)) is None:  # made before servers had their own pool
        return lxd.instances.state(name=name, project=project).disk_usage_bytes
    space = lxd.host.pool_resources(pool_name(server)).get("space", {})
    return int(space.get("used", 0))


def resize_disk(lxd: Lxd, server: Server, gib: int) -> None:
    """Grow or shrink the server's loop file and its btrfs filesystem, online."""
    pool = lxd.host.get_pool(pool_name(server))
    if pool is None or pool.driver != "btrfs" or not pool.config.get("source", "").endswith(".img"):
        return
    size = gib * 2**30
    source, device, mountpoint = _loop_backing(pool)
    if size >= os.path.getsize(source):
        run(["truncate", "-s", str(size), source], what=f"grow {source}")
        run(["losetup", "-c", device], what=f"refresh the size of {device}")
        run(["btrfs", "filesystem", "resize", "max", mountpoint], what=f"grow {mountpoint}")
    else:
        # Freed files leave half-empty data chunks behind; compact them so the shrink finds
        # room. Never metadata: on a small filesystem relocating its only metadata chunk runs
        # out of space and forces the filesystem read-only (seen with -musage=50).
        run(
            ["btrfs", "balance", "start", "-dusage=50", mountpoint],
            what=f"compact {mountpoint}",
        )
        try:
            run(
                ["btrfs", "filesystem", "resize", str(size), mountpoint],
                what=f"shrink {mountpoint}",
            )
        except HostSetupError as exc:
            raise Conflict(
                f"the disk of server {server.id} cannot shrink to {gib} GiB: {exc.brief}",
                resolution="free space inside the server (or delete snapshots) and retry",
            ) from exc
        run(["truncate", "-s", str(size), source], what=f"shrink {source}")
        run(["losetup", "-c", device], what=f"refresh the size of {device}")
    lxd.host.patch_pool(pool.name, {"size": f"{gib}GiB"})
    log.info("disk resized", extra={"server": server.id, "gib": gib})


def _loop_backing(pool: StoragePoolInfo) -> tuple[str, str, str]:
    """(loop file, loop device, mount point) of a loop-backed pool."""
    source = pool.config["source"]
    found = run(["losetup", "-n", "-O", "NAME", "-j", source], what=f"find the loop of {source}")
    if not found.strip():
        raise HostSetupError(f"{source} is not attached to a loop device", resolution="restart LXD")
    device = found.split()[0]
    targets = run(
        ["findmnt", "-n", "-o", "TARGET", "--source", device], what=f"find where {device} is"
    ).split()
    mountpoint = next((t for t in targets if t.endswith(f"/storage-pools/{pool.name}")), None)
    if mountpoint is None:
        raise HostSetupError(f"pool {pool.name} is not mounted", resolution="restart LXD")
    return source, device, mountpoint
