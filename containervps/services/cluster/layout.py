"""Where each member of the development cluster lives: names, addresses, directories.

Pure: every name and address comes from the settings and the member's number, so dev-up,
dev-down and dev-status agree without asking the kernel.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from containervps.config import Settings
from containervps.errors import InvalidInput

__all__ = ["MEMBER_PREFIX", "ClusterLayout", "MemberLayout", "cluster_layout"]

MEMBER_PREFIX = "member"  # LXD server names: member1, member2, ...
ADDRESS_OFFSET = 10  # member N gets the address network + 10 + N on the cluster bridge
NAME_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,11}$")  # <prefix>vN stays within IFNAMSIZ
MAX_MEMBERS = 9  # LXD's own test suite stays this small too; 2 cores, 3 daemons measured


@dataclass(frozen=True)
class MemberLayout:
    """One member: its LXD server name, network namespace, veth, address and LXD_DIR."""

    index: int
    name: str
    netns: str
    veth: str  # host side, on the cluster bridge; the namespace side is called eth0
    address: str  # on the cluster bridge, no prefix
    prefix_len: int
    port: int
    lxd_dir: Path

    @property
    def https_address(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def socket(self) -> Path:
        """Its unix socket, reachable from the host's filesystem."""
        return self.lxd_dir / "unix.socket"

    @property
    def pid_file(self) -> Path:
        """Where the pid of its daemon is recorded (beside, not inside, its LXD_DIR)."""
        return self.lxd_dir.parent / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """The daemon's own output (a private directory: the cluster's stays traversable)."""
        return self.lxd_dir.parent / "logs" / f"{self.name}.log"


@dataclass(frozen=True)
class ClusterLayout:
    bridge: str
    gateway: str  # the host's address on the bridge
    prefix_len: int
    directory: Path
    members: tuple[MemberLayout, ...]

    @property
    def bootstrap(self) -> MemberLayout:
        return self.members[0]


def cluster_layout(settings: Settings, *, members: int | None = None) -> ClusterLayout:
    """The layout of a cluster of ``members`` (default ``cluster_members``) members."""
    count = settings.cluster_members if members is None else members
    if not NAME_PREFIX.match(settings.cluster_prefix):
        raise InvalidInput(
            f"cluster_prefix {settings.cluster_prefix!r}: 1-12 of a-z and 0-9, a letter first",
            details={"field": "cluster_prefix"},
        )
    if not 1 <= count <= MAX_MEMBERS:
        raise InvalidInput(
            f"members must be 1-{MAX_MEMBERS}, not {count}",
            details={"field": "members", "min": 1, "max": MAX_MEMBERS},
        )
    try:
        iface = ipaddress.IPv4Interface(settings.cluster_subnet)
    except ValueError as exc:
        raise InvalidInput(
            f"cluster_subnet {settings.cluster_subnet!r} is not an IPv4 address/prefix",
            details={"field": "cluster_subnet"},
        ) from exc
    net = iface.network
    if net.network_address + ADDRESS_OFFSET + count >= net.broadcast_address:
        raise InvalidInput(
            f"cluster_subnet {settings.cluster_subnet} has no room for {count} members",
            details={"field": "cluster_subnet"},
        )
    first = net.network_address + ADDRESS_OFFSET + 1
    if first <= iface.ip <= first + count - 1:
        raise InvalidInput(
            f"cluster_subnet's host address {iface.ip} is one of the members' ({first} and up)",
            details={"field": "cluster_subnet"},
        )
    return ClusterLayout(
        bridge=settings.cluster_bridge,
        gateway=str(iface.ip),
        prefix_len=net.prefixlen,
        directory=settings.cluster_dir,
        members=tuple(
            MemberLayout(
                index=n,
                name=f"{MEMBER_PREFIX}{n}",
                netns=f"{settings.cluster_prefix}-{MEMBER_PREFIX}{n}",
                veth=f"{settings.cluster_prefix}v{n}",
                address=str(net.network_address + ADDRESS_OFFSET + n),
                prefix_len=net.prefixlen,
                port=settings.cluster_port,
                lxd_dir=settings.cluster_dir / f"{MEMBER_PREFIX}{n}",
            )
            for n in range(1, count + 1)
        ),
    )
