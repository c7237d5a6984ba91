"""Host-level LXD objects: server info, storage pools, networks, profiles, projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from containervps.errors import LxdError, LxdNotFound
from containervps.lxd.client import LxdApi
from containervps.lxd.types import NetworkInfo, ProfileInfo, ServerInfo, StoragePoolInfo


class HostObjects:
    """Create, read and update LXD's host-wide objects."""

    def __init__(self, api: LxdApi) -> None:
        self.api = api

    def server_info(self) -> ServerInfo:
        """LXD version, storage drivers and kernel facts."""
        meta = self.api.request("get", "/", what="read LXD server info")
        env = meta.get("environment", {})
        drivers = tuple(d["Name"] for d in env.get("storage_supported_drivers", []) or [])
        return ServerInfo(
            version=env.get("server_version", "?"),
            storage_drivers=drivers,
            kernel_version=env.get("kernel_version", "?"),
            instance_types=tuple(env.get("instance_types", []) or []),
            kernel_features=dict(env.get("kernel_features", {}) or {}),
        )

    # storage pools
    def get_pool(self, name: str) -> StoragePoolInfo | None:
        """The pool, or None."""
        try:
            meta = self.api.request("get", f"/storage-pools/{name}", what=f"read pool {name}")
        except LxdNotFound:
            return None
        return StoragePoolInfo(name=name, driver=meta["driver"], config=meta.get("config", {}))

    def create_pool(self, *, name: str, driver: str, config: dict[str, str]) -> None:
        """Create a storage pool (a failed create leaves no empty loop file behind)."""
        try:
            self.api.request(
                "post",
                "/storage-pools",
                json={"name": name, "driver": driver, "config": config},
                what=f"create {driver} storage pool {name}",
            )
        except LxdError:
            # LXD 5.0.2 keeps the empty <LXD dir>/disks/<pool>.img it could not size.
            leftover = self.api.socket_path.parent / "disks" / f"{name}.img"
            if leftover.is_file() and leftover.stat().st_size == 0:
                leftover.unlink()
            raise

    def pool_dir(self, name: str) -> Path:
        """Where LXD mounts a storage pool on this host (<LXD dir>/storage-pools/<name>)."""
        return self.api.socket_path.parent / "storage-pools" / name

    def list_pools(self) -> list[StoragePoolInfo]:
        metas = self.api.request(
            "get", "/storage-pools", params={"recursion": "1"}, what="list storage pools"
        )
        return [
            StoragePoolInfo(name=m["name"], driver=m["driver"], config=m.get("config", {}))
            for m in metas
        ]

    def patch_pool(self, name: str, config: dict[str, str]) -> None:
        self.api.request(
            "patch", f"/storage-pools/{name}", json={"config": config}, what=f"update pool {name}"
        )

    def delete_image_volumes(self, pool: str) -> None:
        """Drop the image copies LXD caches in a pool (instances made from them stay intact)."""
        for url in self.api.request(
            "get", f"/storage-pools/{pool}/volumes/image", what=f"list images in pool {pool}"
        ):
            fingerprint = url.rsplit("/", 1)[-1]
            self.api.request(
                "delete",
                f"/storage-pools/{pool}/volumes/image/{fingerprint}",
                what=f"delete image volume {fingerprint[:12]} in pool {pool}",
            )

    def delete_pool(self, name: str) -> None:
        """Delete a pool and its cached image volumes; absent is fine."""
        try:
            self.delete_image_volumes(name)
            self.api.request("delete", f"/storage-pools/{name}", what=f"delete pool {name}")
        except LxdNotFound:
            return

    def pool_resources(self, name: str) -> dict[str, Any]:
        """Space and inode usage of a pool."""
        return dict(
            self.api.request("get", f"/storage-pools/{name}/resources", what=f"read pool {name}")
        )

    # networks
    def list_networks(self) -> list[NetworkInfo]:
        """All networks LXD sees (managed or not)."""
        metas = self.api.request(
            "get", "/networks", params={"recursion": "1"}, what="list networks"
        )
        return [
            NetworkInfo(name=m["name"], managed=m["managed"], config=m.get("config", {}))
            for m in metas
        ]

    def get_network(self, name: str) -> NetworkInfo | None:
        return next((n for n in self.list_networks() if n.name == name), None)

    def create_network(self, *, name: str, config: dict[str, str], description: str) -> None:
        """Create a managed bridge."""
        self.api.request(
            "post",
            "/networks",
            json={"name": name, "type": "bridge", "config": config, "description": description},
            what=f"create network {name}",
        )

    def patch_network(self, name: str, config: dict[str, str]) -> None:
        """Merge config keys into a network's."""
        self.api.request(
            "patch", f"/networks/{name}", json={"config": config}, what=f"update network {name}"
        )

    def delete_network(self, name: str) -> None:
        self.api.request("delete", f"/networks/{name}", what=f"delete network {name}")

    # profiles
    def get_profile(self, name: str, *, project: str | None = None) -> ProfileInfo | None:
        try:
            meta = self.api.request(
                "get", f"/profiles/{name}", project=project, what=f"read profile {name}"
            )
        except LxdNotFound:
            return None
        return ProfileInfo(name=name, config=meta["config"], devices=meta["devices"])

    def put_profile(
        self,
        *,
        name: str,
        config: dict[str, str],
        devices: dict[str, dict[str, str]],
        description: str,
        project: str | None = None,
    ) -> None:
        """Create the profile or replace its config and devices."""
        body = {"config": config, "devices": devices, "description": description}
        if self.get_profile(name, project=project) is None:
            self.api.request(
                "post",
                "/profiles",
                project=project,
                json={"name": name, **body},
                what=f"create profile {name}",
            )
        else:
            self.api.request(
                "put",
                f"/profiles/{name}",
                project=project,
                json=body,
                what=f"update profile {name}",
            )

    # projects
    def list_projects(self) -> list[str]:
        metas = self.api.request("get", "/projects", what="list projects")
        return [m.rstrip("/").split("/")[-1] for m in metas]

    def get_project(self, name: str) -> dict[str, str] | None:
        """A project's config, or None."""
        try:
            meta = self.api.request("get", f"/projects/{name}", what=f"read project {name}")
        except LxdNotFound:
            return None
        return dict(meta.get("config", {}))

    def put_project(self, *, name: str, config: dict[str, str], description: str) -> None:
        """Create the project or replace its config."""
        if self.get_project(name) is None:
            self.api.request(
                "post",
                "/projects",
                json={"name": name, "config": config, "description": description},
                what=f"create project {name}",
            )
        else:
            self.api.request(
                "put",
                f"/projects/{name}",
                json={"config": config, "description": description},
                what=f"update project {name}",
            )

    def delete_project(self, name: str) -> None:
        self.api.request("delete", f"/projects/{name}", what=f"delete project {name}")
