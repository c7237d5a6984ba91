"""Pure logic of host set-up: subordinate id ranges, bridge subnets, stale lxcfs mounts."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from containervps.config import Settings
from containervps.errors import HostSetupError
from containervps.services.host import daemons
from containervps.services.host.setup import (
    IDMAP_SIZE,
    SPARE_IDMAPS,
    required_subids,
    validate_subnet,
    widen_subids,
)


def test_widen_subids_grows_root_and_keeps_others(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("_lxd:100000:10000001\nroot:100000:10000001\n")
    settings = Settings(max_containers=200)
    assert widen_subids(settings, files=(subuid,)) is True
    lines = subuid.read_text().splitlines()
    assert "_lxd:100000:10000001" in lines
    assert f"root:100000:{(201 + SPARE_IDMAPS) * IDMAP_SIZE}" in lines
    assert widen_subids(settings, files=(subuid,)) is False  # idempotent


def test_widen_subids_never_shrinks(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("root:100000:999999999\n")
    assert widen_subids(Settings(max_containers=10), files=(subuid,)) is False
    assert subuid.read_text() == "root:100000:999999999\n"


def test_widen_subids_creates_missing_entry(tmp_path: Path) -> None:
    subgid = tmp_path / "subgid"
    settings = Settings(max_containers=5, subid_start=2_000_000)
    assert widen_subids(settings, files=(subgid,)) is True
    assert subgid.read_text() == f"root:2000000:{required_subids(settings)}\n"


@pytest.mark.parametrize(
    ("subnet", "message"),
    [
        ("not-a-subnet", "is not an IPv4 gateway/prefix"),
        ("10.1.0.1/24", "holds only 253 VPSs"),
        ("10.1.0.0/20", "is not a usable host address"),
    ],
)
def test_bad_subnets_are_refused(subnet: str, message: str) -> None:
    with pytest.raises(HostSetupError, match=message):
        validate_subnet(subnet)


def test_a_20_holds_four_thousand() -> None:
    iface = validate_subnet("10.213.0.1/20")
    assert iface.network.num_addresses - 3 == 4093


class _StaleMount:
    """A path under a FUSE mount whose daemon died: every stat fails with ENOTCONN."""

    def __truediv__(self, _: str) -> _StaleMount:
        return self

    def exists(self) -> bool:
        raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")

    def __str__(self) -> str:
        return "/var/lib/lxcfs"


def test_a_stale_lxcfs_mount_is_detached_and_a_live_one_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[list[str]] = []

    def run(cmd: list[str], **_: object) -> str:
        ran.append(cmd)
        return ""

    monkeypatch.setattr(daemons, "run", run)
    monkeypatch.setattr(daemons, "LXCFS_DIR", _StaleMount())
    assert daemons.lxcfs_active() is False
    daemons._release_stale_lxcfs_mount()
    assert ran == [["umount", "-l", "/var/lib/lxcfs"]]

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal: 1 kB\n")
    monkeypatch.setattr(daemons, "LXCFS_DIR", tmp_path)
    ran.clear()
    assert daemons.lxcfs_active() is True
    daemons._release_stale_lxcfs_mount()
    assert ran == []
