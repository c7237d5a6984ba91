"""The image catalogue: how each OS image offered to tenants is made."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from containervps.config import Settings
from containervps.errors import InvalidInput

BUILDER_VERSION = 7  # bump when the rootfs customisation changes, to invalidate caches
# The code that writes into a rootfs is part of the key as well: two branches that both bumped
# BUILDER_VERSION to the same number shared a cache key for different images.
_BUILDER_SOURCES = ("rootfs.py", "guest_tmpfs.py")


@cache
def _builder_digest() -> str:
    here = Path(__file__).parent
    blob = b"".join((here / name).read_bytes() for name in _BUILDER_SOURCES)
    return hashlib.sha256(blob).hexdigest()[:16]


DEBIAN_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "systemd-resolved",
    "udev",
    "dbus",
    "openssh-server",
    "iproute2",
    "iputils-ping",
    "procps",
    "ca-certificates",
    "less",
    "nano",
)


@dataclass(frozen=True)
class ImageRecipe:
    """One image: built offline (busybox, debootstrap) or copied from a simplestreams remote."""

    name: str
    os: str
    release: str
    description: str
    kind: Literal["busybox", "debootstrap", "remote"]
    packages: tuple[str, ...] = ()
    suite: str = ""
    mirror: str = ""
    remote_server: str = ""
    remote_alias: str = ""

    def cache_key(self) -> str:
        """Changes whenever anything that shapes the build output changes."""
        blob = json.dumps(
            {**asdict(self), "builder": BUILDER_VERSION, "code": _builder_digest()}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def properties(self) -> dict[str, str]:
        """Properties stored on the LXD image."""
        return {
            "os": self.os,
            "release": self.release,
            "description": self.description,
            "containervps.name": self.name,
            "containervps.cache_key": self.cache_key(),
        }


def recipes(settings: Settings) -> dict[str, ImageRecipe]:
    """All images this host can offer, by name."""
    catalogue = {
        "busybox": ImageRecipe(
            name="busybox",
            os="BusyBox",
            release="1.35",
            kind="busybox",
            description="BusyBox (static) with busybox init and udhcpc: tiny, boots in a blink",
        ),
        "debian-12": ImageRecipe(
            name="debian-12",
            os="Debian",
            release="12",
            kind="debootstrap",
            description="Debian 12 (bookworm) minbase with systemd, openssh-server and DHCP",
            packages=DEBIAN_PACKAGES,
            suite=settings.debian_suite,
            mirror=settings.debian_mirror,
        ),
    }
    for name, spec in settings.image_remotes.items():
        server, _, alias = spec.partition(" ")
        if not server or not alias:
            raise InvalidInput(
                f"image_remotes[{name!r}] must be '<server URL> <alias>', got {spec!r}",
                resolution="fix CONTAINERVPS_IMAGE_REMOTES",
            )
        catalogue.setdefault(
            name,
            ImageRecipe(
                name=name,
                os=alias.split("/")[0].capitalize(),
                release=alias.split("/")[-1],
                kind="remote",
                description=f"{alias} from {server}",
                remote_server=server,
                remote_alias=alias,
            ),
        )
    return catalogue


def get_recipe(settings: Settings, name: str) -> ImageRecipe:
    """The recipe called ``name`` or an InvalidInput naming the known ones."""
    catalogue = recipes(settings)
    if name not in catalogue:
        raise InvalidInput(
            f"unknown image {name!r}",
            details={"image": name, "known": sorted(catalogue)},
            resolution=f"pick one of: {', '.join(sorted(catalogue))}",
        )
    return catalogue[name]
