"""The ``lxd init --preseed`` documents of the development cluster (pure).

The first member bootstraps the cluster: its address and clustering, nothing else. Members
2..N join with a single-use join token (LXD 5.0 takes it as ``cluster_password``). The storage
pool and the managed bridge are created afterwards the cluster way, pending on each member and
then globally (dev.py), so every member has its own loop file and bridge and a join never
needs member-specific keys for them. JSON is YAML, so the documents are rendered as JSON.
"""

from __future__ import annotations

import json
from typing import Any

from containervps.services.cluster.layout import MemberLayout

__all__ = ["bootstrap_preseed", "join_preseed", "render"]


def bootstrap_preseed(member: MemberLayout) -> dict[str, Any]:
    """Member 1: listen on its cluster address and enable clustering under its name."""
    return {
        "config": {
            "core.https_address": member.https_address,
            # No image server is reachable: never try to refresh images.
            "images.auto_update_interval": "0",
        },
        "cluster": {"server_name": member.name, "enabled": True},
    }


def join_preseed(
    member: MemberLayout, *, bootstrap: MemberLayout, certificate: str, token: str
) -> dict[str, Any]:
    """Member 2..N: join through the bootstrap member with its certificate and a join token."""
    return {
        "cluster": {
            "server_name": member.name,
            "enabled": True,
            "server_address": member.https_address,
            "cluster_address": bootstrap.https_address,
            "cluster_certificate": certificate,
            "cluster_password": token,  # LXD 5.0 recognises a join token here
            "member_config": [],
        }
    }


def render(document: dict[str, Any]) -> str:
    """The preseed as ``lxd init --preseed`` reads it on stdin."""
    return json.dumps(document, indent=2) + "\n"
