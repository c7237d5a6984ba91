"""What this host enforces for server limits that some kernels cannot (NIC egress).

The probe starts a scratch busybox container once and caches the answer per kernel in the
data dir; ``nic_egress_limit`` = enforce | platform | skip overrides it. LXD's own limit comes
first; where the kernel refuses it (no tc police action), the platform shapes each server's
upload itself (services/servers/egress_shaping.py) if the kernel has IFB, mirred and HTB.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass

from containervps.config import Settings
from containervps.errors import ContainerVpsError, LxdError, LxdUnavailable
from containervps.lxd import Lxd
from containervps.services.servers import egress_shaping

log = logging.getLogger(__name__)

__all__ = ["LXD", "PLATFORM", "EgressSupport", "egress_refusal", "egress_support"]

_lock = threading.Lock()


LXD, PLATFORM = "lxd", "platform"  # who enforces a server's egress limit
CACHE_VERSION = 2  # answers of versions that knew no platform shaping are probed again


@dataclass(frozen=True)
class EgressSupport:
    enforced: bool
    reason: str
    mechanism: str = ""  # LXD (NIC limits.egress) or PLATFORM (IFB shaping); "" when neither


def _cache_path(settings: Settings) -> str:
    return str(settings.data_dir / "capabilities.json")


def _kernel() -> str:
    return os.uname().release


def egress_support(settings: Settings, lxd: Lxd) -> EgressSupport:
    """Whether NIC limits.egress can be applied (probed once per kernel, then cached)."""
    mode = settings.nic_egress_limit
    if mode == "enforce":
        return EgressSupport(True, "", LXD)
    if mode == "skip":
        return EgressSupport(False, "disabled by nic_egress_limit=skip")
    if mode == "platform":
        return _platform("nic_egress_limit=platform")
    with _lock:
        try:
            with open(_cache_path(settings)) as fh:
                cached = json.load(fh)
            if cached.get("kernel") == _kernel() and cached.get("version") == CACHE_VERSION:
                return EgressSupport(
                    bool(cached["egress"]),
                    str(cached.get("reason", "")),
                    str(cached.get("mechanism", "")),
                )
        except (OSError, ValueError, KeyError):
            pass
        support, conclusive = _probe(settings, lxd)
        if not conclusive:
            return support
        if not support.enforced:
            support = _platform(support.reason)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with open(_cache_path(settings), "w") as fh:
            json.dump(
                {
                    "version": CACHE_VERSION,
                    "kernel": _kernel(),
                    "egress": support.enforced,
                    "reason": support.reason,
                    "mechanism": support.mechanism,
                },
                fh,
            )
        return support


_shaping_probed: tuple[bool, str] | None = None  # per process: the kernel does not change


def _platform(why_not_lxd: str) -> EgressSupport:
    """The platform's own shaping, if this kernel can do it (probed on two scratch IFBs)."""
    global _shaping_probed
    if _shaping_probed is None or not _shaping_probed[0]:
        _shaping_probed = egress_shaping.available()
    ok, detail = _shaping_probed
    if not ok:
        return EgressSupport(False, f"{why_not_lxd}; platform shaping unavailable: {detail}")
    return EgressSupport(True, f"shaped by the platform ({detail}): {why_not_lxd}", PLATFORM)


def egress_refusal(lxd: Lxd, *, name: str, project: str, network: str) -> str | None:
    """Apply an 8 Mbit/s egress limit to a running container's eth0; LXD's refusal, or None."""
    try:
        lxd.instances.update(
            name=name,
            project=project,
            devices={
                "eth0": {
                    "type": "nic",
                    "network": network,
                    "name": "eth0",
                    "limits.egress": "8Mbit",
                }
            },
        )
    except LxdError as exc:
        return str(exc.details.get("lxd", exc.brief))
    return None


def _probe(settings: Settings, lxd: Lxd) -> tuple[EgressSupport, bool]:
    """(support, conclusive): an inconclusive probe is not cached."""
    name = f"cvps-probe-{secrets.token_hex(3)}"
    try:
        try:
            lxd.instances.create(
                name=name,
                project="default",
                image="busybox",
                profiles=[settings.profile],
                tags={"probe": "egress"},
                start=True,
            )
        except LxdUnavailable:
            raise
        except ContainerVpsError as exc:
            # Cannot tell; do not promise a limit we have not seen work.
            return EgressSupport(False, f"egress limit not verified: {exc.brief}"), False
        refusal = egress_refusal(lxd, name=name, project="default", network=settings.bridge)
        if refusal is not None:
            # LXD wraps the kernel's answer: keep the part after the last "Error: ".
            reason = refusal.splitlines()[0].rsplit("Error: ", 1)[-1].rstrip(".")
            log.warning("NIC egress limit not enforceable", extra={"reason": reason})
            return EgressSupport(False, f"this host cannot limit egress (LXD: {reason})"), True
    finally:
        try:
            lxd.instances.delete(name=name, project="default")
        except ContainerVpsError:
            log.exception("could not delete egress probe container", extra={"name": name})
    return EgressSupport(True, "", LXD), True
