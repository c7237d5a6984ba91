"""Pure logic of the lxcfs repair: which mounts are views, whose cgroup, when the watchdog acts."""

from __future__ import annotations

import pytest

from containervps.config import Settings
from containervps.services.host import lxcfs_mounts, lxcfs_watchdog
from containervps.services.host.lxcfs_watchdog import LxcfsRepair, LxcfsWatchdog

MOUNTINFO = """\
94 90 0:70 / /proc rw,nosuid,nodev,noexec,relatime shared:3 - proc proc rw
109 94 0:42 /proc/meminfo /proc/meminfo rw,nosuid,nodev,relatime shared:23 - fuse.lxcfs lxcfs rw
114 95 0:42 /sys/devices/system/cpu /sys/devices/system/cpu rw shared:34 - fuse.lxcfs lxcfs rw
120 90 0:99 / /mnt/mine rw,relatime shared:40 - fuse.lxcfs lxcfs rw
121 90 0:99 /proc/meminfo /home/x rw,relatime shared:41 - fuse.lxcfs lxcfs rw
122 90 0:42 /proc/meminfo /proc/meminfo rw,relatime shared:42 master:23 - fuse.lxcfs lxcfs rw
"""


def test_only_the_views_lxc_made_are_taken() -> None:
    # A tenant's own "lxcfs" at another path, or a view mounted elsewhere, is left alone.
    assert lxcfs_mounts.lxcfs_views(MOUNTINFO) == [
        ("/proc/meminfo", "0:42"),
        ("/sys/devices/system/cpu", "0:42"),
        ("/proc/meminfo", "0:42"),
    ]


@pytest.mark.parametrize(
    ("cgroup", "owner"),
    [
        ("lxc.payload.cvps-t-7_web-1", ("cvps-t-7", "web-1")),
        ("lxc.payload.cvps-t-7-g2_db", ("cvps-t-7-g2", "db")),
        ("lxc.payload.plain", ("default", "plain")),
    ],
)
def test_a_cgroup_names_its_project_and_instance(cgroup: str, owner: tuple[str, str]) -> None:
    assert lxcfs_mounts._owner(cgroup) == owner


def test_the_watchdog_repairs_at_start_when_lxcfs_is_down_or_was_restarted(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    active, device = [True], ["0:42"]
    passes: list[str] = []

    def repair(_: Settings, **__: object) -> LxcfsRepair:
        passes.append(device[0])
        active[0] = True
        return LxcfsRepair(False, 0, [], {}, 0.0)

    monkeypatch.setattr(lxcfs_watchdog, "repair_lxcfs", repair)
    monkeypatch.setattr(lxcfs_watchdog.daemons, "lxcfs_active", lambda: active[0])
    monkeypatch.setattr(lxcfs_watchdog, "lxcfs_device", lambda: device[0])
    dog = LxcfsWatchdog(settings)
    assert dog.tick() is not None  # start-up: views left dead while no API ran
    assert dog.tick() is None and dog.tick() is None
    active[0] = False
    assert dog.tick() is not None
    assert dog.tick() is None
    device[0] = "0:77"  # restarted by someone else (`host start`)
    assert dog.tick() is not None
    assert dog.tick() is None
    assert passes == ["0:42", "0:42", "0:77"]
