"""What the platform cannot do yet for a server placed on an LXD cluster member, and says so.

A member's containers sit on a managed bridge inside that member's network namespace (the
development cluster) or on another machine. The pieces the platform runs on its own host's
side of a server's NIC or disk do not reach them yet: egress shaping (an IFB on the host-side
veth) and disk bandwidth (written into this host's blkio cgroup of the container, under the
pool's loop device). A server on a member is therefore made without them, and its limits say
why. (Its SSH port does reach it: the host's DNAT forward plus a route to its member,
services/cluster/routes.py.)
"""

from __future__ import annotations

from containervps.db.models import Server
from containervps.services.host.capabilities import EgressSupport
from containervps.services.servers.bandwidth import BandwidthSupport

__all__ = [
    "OFFLINE_DETAIL",
    "bandwidth_on_member",
    "egress_on_member",
    "unreachable",
]

# The start of the status detail of a server whose member LXD cannot reach (the reconciler
# writes it with the status "unknown", services/reconcile/members.py).
OFFLINE_DETAIL = "cluster member {member} is offline"


def _why(member: str, what: str) -> str:
    return (
        f"not enforced on cluster member {member}: {what} works on this host's side of a "
        "server's NIC and disk, which a member's servers do not have yet"
    )


def egress_on_member(member: str) -> EgressSupport:
    return EgressSupport(False, _why(member, "the platform's egress shaping (IFB on the veth)"))


def bandwidth_on_member(member: str) -> BandwidthSupport:
    return BandwidthSupport(False, _why(member, "the platform's blkio throttle"))


def unreachable(server: Server) -> bool:
    """Whether the reconciler found the server's member offline (and has not seen it back)."""
    if not server.member or server.status != "unknown":
        return False
    return (server.status_detail or "").startswith(OFFLINE_DETAIL.format(member=server.member))
