"""Snapshots of instances: create, restore, delete."""

from __future__ import annotations

from containervps.lxd.client import LxdApi

__all__ = ["Snapshots"]


class Snapshots:
    """Stateless (disk) snapshots of containers."""

    def __init__(self, api: LxdApi) -> None:
        self.api = api

    def create(self, *, name: str, project: str, snapshot: str) -> None:
        """Snapshot the instance's disk (btrfs: instant, copy-on-write)."""
        self.api.request(
            "post",
            f"/instances/{name}/snapshots",
            project=project,
            json={"name": snapshot, "stateful": False},
            what=f"snapshot {name} as {snapshot}",
        )

    def names(self, *, name: str, project: str) -> list[str]:
        """The instance's snapshot names."""
        urls = self.api.request(
            "get", f"/instances/{name}/snapshots", project=project, what=f"list snapshots of {name}"
        )
        return [str(u).rstrip("/").split("/")[-1].split("?")[0] for u in urls or []]

    def restore(self, *, name: str, project: str, snapshot: str) -> None:
        """Put the disk back as it was at the snapshot (LXD stops and restarts a running one)."""
        self.api.request(
            "put",
            f"/instances/{name}",
            project=project,
            json={"restore": snapshot},
            what=f"restore {name} from {snapshot}",
        )

    def delete(self, *, name: str, project: str, snapshot: str) -> None:
        self.api.request(
            "delete",
            f"/instances/{name}/snapshots/{snapshot}",
            project=project,
            what=f"delete snapshot {snapshot} of {name}",
        )
