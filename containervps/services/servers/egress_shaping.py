"""A server's upload shaped by the host where LXD cannot (no tc police action on this kernel).

What the server sends arrives on the ingress of the host side of its veth. An ingress qdisc
there redirects every packet (u32 match-all, mirred) to an IFB device of the server's own, whose
HTB class holds the rate; the IFB hands the packets back to the veth's receive path. The IFB
outlives the veth (a reboot makes a new one): only the redirect is put on again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass

from containervps.errors import HostSetupError
from containervps.shell import probe, run

log = logging.getLogger(__name__)

__all__ = [
    "IFB_PREFIX",
    "Shaping",
    "apply",
    "available",
    "ifb_name",
    "ifbs",
    "remove",
    "shaping",
]

IFB_PREFIX = "cve"  # cve + 12 hex digits: 15 characters, the kernel's longest interface name
ALIAS_PREFIX = "containervps egress "
INGRESS = "ffff:"
# HTB warns when rate / r2q exceeds 200000 bytes; one class needs no fair quantum.
QUANTUM = "60000"


@dataclass(frozen=True)
class Shaping:
    """What the kernel holds for a server: its IFB's rate and whether its veth redirects."""

    mbit: int | None  # the IFB's HTB rate; None: no IFB or no class
    redirected: bool  # the veth's ingress redirects to the IFB


def ifb_name(*, server_id: int, project: str, name: str) -> str:
    """The server's IFB device name, stable for the server's life.

    Hashed with its LXD project and name, not the id alone: several platform databases (a test
    run's, the operator's) may share one host and each counts ids from 1.
    """
    digest = hashlib.sha256(f"{project}/{name}/{server_id}".encode()).hexdigest()
    return f"{IFB_PREFIX}{digest[:12]}"


def _alias(project: str, name: str) -> str:
    return f"{ALIAS_PREFIX}{project}/{name}"


def _link_exists(device: str) -> bool:
    return probe(["ip", "link", "show", "dev", device], timeout=10).ok


def _run(command: str, *, what: str) -> str:
    """Run a tc/ip command line (split on spaces: every word here is a name or a number)."""
    return run(command.split(), what=what, timeout=30)


def apply(*, ifb: str, veth: str, mbit: int, project: str, name: str) -> None:
    """Shape what ``veth``'s container sends to ``mbit`` Mbit/s (idempotent)."""
    what = f"shape the upload of {project}/{name}"
    if not _link_exists(ifb):
        _run(f"ip link add {ifb} type ifb", what=what)
    run(["ip", "link", "set", "dev", ifb, "alias", _alias(project, name)], what=what, timeout=30)
    _run(f"ip link set dev {ifb} up", what=what)
    if "qdisc htb 1:" not in probe(["tc", "qdisc", "show", "dev", ifb], timeout=30).stdout:
        # HTB cannot change a qdisc in place ("Change operation not supported"): it is added
        # once, and the rate lives in its class, which can be changed.
        _run(f"tc qdisc add dev {ifb} root handle 1: htb default 1", what=what)
    rate = f"{mbit}mbit"
    _run(
        f"tc class replace dev {ifb} parent 1: classid 1:1 htb rate {rate} ceil {rate} "
        f"quantum {QUANTUM}",
        what=what,
    )
    if not shaping(ifb=ifb, veth=veth).redirected:
        # A new veth (a start), or LXD dropped its ingress qdisc when it set the NIC's limits.
        _run(f"tc qdisc replace dev {veth} handle {INGRESS} ingress", what=what)
        _run(
            f"tc filter replace dev {veth} parent {INGRESS} protocol all prio 1 "
            f"u32 match u32 0 0 action mirred egress redirect dev {ifb}",
            what=what,
        )
    log.info("egress shaped", extra={"ifb": ifb, "veth": veth, "mbit": mbit})


def remove(*, ifb: str, veth: str | None = None) -> bool:
    """Stop shaping: the veth's redirect (if it is still there), then the IFB; True if the IFB
    existed."""
    if veth and _link_exists(veth):
        # A redirect to a deleted IFB would drop every packet the server sends.
        probe(["tc", "qdisc", "del", "dev", veth, "handle", INGRESS, "ingress"], timeout=30)
    if not _link_exists(ifb):
        return False
    res = probe(["ip", "link", "del", "dev", ifb], timeout=30)
    if not res.ok and _link_exists(ifb):
        raise HostSetupError(f"could not delete {ifb}", details={"ip": res.stderr.strip()})
    log.info("egress shaping removed", extra={"ifb": ifb})
    return True


_RATE = re.compile(r"class htb 1:1 .*?\brate (\d+(?:\.\d+)?)([KMG]?)bit")


def shaping(*, ifb: str, veth: str | None) -> Shaping:
    """What the kernel holds now for this IFB and veth."""
    mbit = None
    out = probe(["tc", "class", "show", "dev", ifb], timeout=30)
    match = _RATE.search(out.stdout) if out.ok else None
    if match:
        scale = {"": 1e-6, "K": 1e-3, "M": 1.0, "G": 1e3}[match.group(2)]
        mbit = round(float(match.group(1)) * scale)
    redirected = False
    if veth:
        filters = probe(["tc", "filter", "show", "dev", veth, "parent", INGRESS], timeout=30)
        redirected = filters.ok and f"redirect to device {ifb})" in filters.stdout.lower()
    return Shaping(mbit=mbit, redirected=redirected)


def ifbs() -> dict[str, str]:
    """IFB devices this platform made: name -> "project/name" of the instance they shape."""
    out = probe(["ip", "-o", "-d", "link", "show", "type", "ifb"], timeout=30)
    found = {}
    for line in out.stdout.splitlines() if out.ok else []:
        fields = line.split(":", 2)
        if len(fields) < 3:
            continue
        device = fields[1].strip().split("@")[0]
        alias = re.search(r"\balias (.+)$", line)
        if device.startswith(IFB_PREFIX) and alias and alias.group(1).startswith(ALIAS_PREFIX):
            found[device] = alias.group(1).removeprefix(ALIAS_PREFIX).strip()
    return found


def available() -> tuple[bool, str]:
    """Whether this kernel can shape this way: an IFB redirecting into another (removed)."""
    for tool in ("ip", "tc"):
        if probe([tool, "-V"], timeout=10).returncode == 127:
            return False, f"{tool} is not installed (apt-get install iproute2)"
    token = secrets.token_hex(3)
    source, target = f"cvp{token}s", f"cvp{token}t"
    steps = [
        f"ip link add {source} type ifb",
        f"ip link add {target} type ifb",
        f"tc qdisc add dev {target} root handle 1: htb default 1",
        f"tc class add dev {target} parent 1: classid 1:1 htb rate 8mbit",
        f"tc qdisc add dev {source} handle {INGRESS} ingress",
        f"tc filter add dev {source} parent {INGRESS} protocol all u32 match u32 0 0 "
        f"action mirred egress redirect dev {target}",
    ]
    try:
        for step in steps:
            res = probe(step.split(), timeout=30)
            if not res.ok:
                return False, f"`{step}` failed: {res.stderr.strip()[:200]}"
    finally:
        for device in (source, target):
            probe(["ip", "link", "del", "dev", device], timeout=30)
    return True, "ifb + mirred + htb"
