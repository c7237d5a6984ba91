"""A server's egress limit held where its plan (or a transfer throttle) says: by LXD's NIC
limit where the kernel allows it, else by the platform's IFB shaping (egress_shaping.py)."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

from containervps.config import Settings
from containervps.db.models import Server
from containervps.errors import ContainerVpsError, LxdNotFound
from containervps.lxd import InstanceInfo, Lxd
from containervps.services.host.capabilities import LXD, PLATFORM
from containervps.services.servers import egress_shaping
from containervps.services.servers.limits import egress_mechanism, instance_limits

log = logging.getLogger(__name__)

__all__ = ["Held", "hold", "ifb_of", "release", "wanted_mbit"]


@dataclass(frozen=True)
class Held:
    """What ``hold`` found and did."""

    mechanism: str
    mbit: int | None  # the rate now held (None: nothing to hold, e.g. a stopped server)
    changed: bool


def ifb_of(server: Server) -> str:
    """The IFB device shaping this server's upload."""
    assert server.id is not None
    return egress_shaping.ifb_name(
        server_id=server.id, project=server.lxd_project, name=server.lxd_name
    )


def wanted_mbit(settings: Settings, server: Server, *, throttled: bool) -> int:
    """The egress rate the server is due: its plan's, or the throttle rate when lower."""
    plan = int(server.limits["net_egress"]["value"])
    if throttled and settings.transfer_throttle_mbit > 0:
        return min(plan, settings.transfer_throttle_mbit)
    return plan


def hold(
    settings: Settings,
    lxd: Lxd,
    server: Server,
    *,
    throttled: bool,
    inst: InstanceInfo | None = None,
) -> Held:
    """Make the kernel hold the server's due egress rate (idempotent; cheap when it does).

    A running server's IFB redirect goes on its current veth; a stopped or vanished one's IFB
    is removed (its veth went with it)."""
    mechanism = egress_mechanism(server.limits)
    if not mechanism:
        return Held("", None, False)
    if inst is None:
        try:
            inst = lxd.instances.get(name=server.lxd_name, project=server.lxd_project)
        except LxdNotFound:
            inst = None
    mbit = wanted_mbit(settings, server, throttled=throttled)
    if mechanism == LXD:
        return _hold_lxd(settings, lxd, server, inst, mbit)
    veth = inst.config.get("volatile.eth0.host_name") if inst else None
    if inst is None or inst.status != "Running" or not veth:
        return Held(PLATFORM, None, release(server))
    now = egress_shaping.shaping(ifb=ifb_of(server), veth=veth)
    if now.redirected and now.mbit == mbit:
        return Held(PLATFORM, mbit, False)
    egress_shaping.apply(
        ifb=ifb_of(server), veth=veth, mbit=mbit, project=server.lxd_project, name=server.lxd_name
    )
    return Held(PLATFORM, mbit, True)


def _hold_lxd(
    settings: Settings, lxd: Lxd, server: Server, inst: InstanceInfo | None, mbit: int
) -> Held:
    """LXD enforces the limit: the NIC's limits.egress is set to the due rate."""
    if inst is None:
        return Held(LXD, None, False)
    if inst.devices.get("eth0", {}).get("limits.egress") == f"{mbit}Mbit":
        return Held(LXD, mbit, False)
    limits = copy.deepcopy(server.limits)
    limits["net_egress"]["value"] = mbit
    pool = inst.devices.get("root", {}).get("pool", settings.storage_pool)
    _, devices = instance_limits(
        limits, pool=pool, network=settings.bridge, ipv4=server.ipv4, ipv6=server.ipv6
    )
    lxd.instances.update(
        name=server.lxd_name, project=server.lxd_project, devices={"eth0": devices["eth0"]}
    )
    return Held(LXD, mbit, True)


def release(server: Server, *, veth: str | None = None) -> bool:
    """Remove the server's IFB (after a stop or delete); True if there was one."""
    try:
        return egress_shaping.remove(ifb=ifb_of(server), veth=veth)
    except ContainerVpsError as exc:
        log.warning("could not remove egress shaping", extra={"server": server.id, "error": exc})
        return False
