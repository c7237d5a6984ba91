"""LXD cluster objects: members, join tokens, member config and resources, and the pools
and networks a cluster creates per member first (pending) and then everywhere."""

from __future__ import annotations

import base64
import json
from typing import Any

from containervps.lxd.client import LxdApi
from containervps.lxd.types import ClusterMemberInfo, MemberResources

__all__ = ["ClusterObjects"]


def _member(meta: dict[str, Any]) -> ClusterMemberInfo:
    return ClusterMemberInfo(
        name=meta["server_name"],
        url=str(meta.get("url") or ""),
        status=str(meta.get("status") or ""),
        message=str(meta.get("message") or ""),
        roles=tuple(meta.get("roles") or ()),
        groups=tuple(meta.get("groups") or ()),
        config=dict(meta.get("config") or {}),
    )


def join_token(op_metadata: dict[str, Any]) -> str:
    """The join token ``lxc cluster add`` prints, built from the token operation's metadata
    (base64 of JSON, as LXD 5.0's ``ClusterMemberJoinToken.String``)."""
    token: dict[str, Any] = {
        "server_name": op_metadata["serverName"],
        "fingerprint": op_metadata["fingerprint"],
        "addresses": op_metadata["addresses"],
        "secret": op_metadata["secret"],
    }
    if op_metadata.get("expiresAt"):
        token["expires_at"] = op_metadata["expiresAt"]
    return base64.b64encode(json.dumps(token).encode()).decode()


class ClusterObjects:
    """The cluster as seen through one member's API (any member answers for all)."""

    def __init__(self, api: LxdApi) -> None:
        self.api = api

    def enabled(self) -> bool:
        """Whether this LXD is a cluster member."""
        return bool(self.api.request("get", "/cluster", what="read cluster").get("enabled"))

    def members(self) -> list[ClusterMemberInfo]:
        metas = self.api.request(
            "get", "/cluster/members", params={"recursion": "1"}, what="list cluster members"
        )
        return [_member(m) for m in metas]

    def member(self, name: str) -> ClusterMemberInfo:
        """One member (LxdNotFound when the cluster has no such member)."""
        return _member(
            self.api.request("get", f"/cluster/members/{name}", what=f"read cluster member {name}")
        )

    def certificate(self) -> str:
        """The cluster's certificate (PEM) a joining member must expect."""
        meta = self.api.request("get", "/", what="read LXD server info")
        return str(meta["environment"]["certificate"])

    def join_token(self, name: str) -> str:
        """A single-use token for member ``name`` to join (the operation stays open until used)."""
        op = self.api.start(
            "post", "/cluster/members", json={"server_name": name}, what=f"join token for {name}"
        )
        return join_token(op["metadata"])

    def set_member_config(self, name: str, config: dict[str, str]) -> None:
        """Merge keys into a member's own config (e.g. ``scheduler.instance``)."""
        meta = self.api.request(
            "get", f"/cluster/members/{name}", what=f"read cluster member {name}"
        )
        keep = ("description", "roles", "failure_domain", "groups")
        body = {key: meta[key] for key in keep if key in meta}
        body["config"] = {**(meta.get("config") or {}), **config}
        self.api.request(
            "put", f"/cluster/members/{name}", json=body, what=f"update cluster member {name}"
        )

    def set_config(self, config: dict[str, str]) -> None:
        """Merge cluster-wide server keys (e.g. ``cluster.offline_threshold``) into /1.0."""
        self.api.request("patch", "/", json={"config": config}, what="update server config")

    def resources(self, member: str) -> MemberResources:
        """CPU threads, memory and disks of a member's machine."""
        meta = self.api.request(
            "get", "/resources", params={"target": member}, what=f"read resources of {member}"
        )
        disks = (meta.get("storage") or {}).get("disks") or []
        return MemberResources(
            cpu_threads=int((meta.get("cpu") or {}).get("total") or 0),
            memory_bytes=int((meta.get("memory") or {}).get("total") or 0),
            disk_bytes=sum(int(d.get("size") or 0) for d in disks),
        )

    def pool_total_bytes(self, pool: str, *, member: str) -> int:
        """The size of a storage pool on one member."""
        meta = self.api.request(
            "get",
            f"/storage-pools/{pool}/resources",
            params={"target": member},
            what=f"read pool {pool} on {member}",
        )
        return int((meta.get("space") or {}).get("total") or 0)

    def move_to_member(self, *, name: str, project: str, member: str) -> None:
        """Move a stopped instance to another member, keeping its name and project (its
        volume, snapshots and config go along; LXD 5.0 has no live move of a container)."""
        self.api.request(
            "post",
            f"/instances/{name}",
            project=project,
            params={"target": member},
            json={"name": name, "migration": True},
            what=f"move instance {name} to member {member}",
        )

    def create_pool(
        self,
        *,
        name: str,
        driver: str,
        member_config: dict[str, dict[str, str]],
        config: dict[str, str] | None = None,
    ) -> None:
        """Create a storage pool the cluster way: pending on each member with its own keys
        (``size``, ``source``), then globally (LXD then creates it on every member)."""
        for member, keys in member_config.items():
            self.api.request(
                "post",
                "/storage-pools",
                params={"target": member},
                json={"name": name, "driver": driver, "config": keys},
                what=f"define storage pool {name} on {member}",
            )
        self.api.request(
            "post",
            "/storage-pools",
            json={"name": name, "driver": driver, "config": config or {}},
            what=f"create storage pool {name}",
        )

    def create_network(
        self, *, name: str, members: list[str], config: dict[str, str], description: str
    ) -> None:
        """Create a managed bridge the cluster way: pending on each member, then globally."""
        for member in members:
            self.api.request(
                "post",
                "/networks",
                params={"target": member},
                json={"name": name, "type": "bridge", "config": {}},
                what=f"define network {name} on {member}",
            )
        self.api.request(
            "post",
            "/networks",
            json={"name": name, "type": "bridge", "config": config, "description": description},
            what=f"create network {name}",
        )
