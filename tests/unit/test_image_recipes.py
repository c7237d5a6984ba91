"""Image catalogue and the BusyBox root filesystem, built for real in a temp dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from containervps.config import Settings
from containervps.errors import InvalidInput
from containervps.services.images import rootfs
from containervps.services.images.recipes import get_recipe, recipes


def test_unknown_image_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        get_recipe(Settings(), "windows-95")
    assert "busybox" in err.value.one_line() and "debian-12" in err.value.one_line()


def test_cache_key_follows_the_mirror() -> None:
    a = get_recipe(Settings(), "debian-12").cache_key()
    b = get_recipe(Settings(debian_mirror="http://mirror.example/debian"), "debian-12").cache_key()
    assert a != b
    assert a == get_recipe(Settings(), "debian-12").cache_key()


def test_remote_images_come_from_settings() -> None:
    catalogue = recipes(
        Settings(image_remotes={"alpine-3.20": "https://images.example alpine/3.20"})
    )
    assert catalogue["alpine-3.20"].kind == "remote"
    assert catalogue["alpine-3.20"].remote_alias == "alpine/3.20"
    with pytest.raises(InvalidInput, match="must be '<server URL> <alias>'"):
        recipes(Settings(image_remotes={"bad": "nospace"}))


def test_busybox_rootfs_boots_busybox_init(tmp_path: Path) -> None:
    rootfs.build_busybox(tmp_path)
    assert (tmp_path / "sbin/init").resolve().name == "busybox" or (
        (tmp_path / "sbin/init").readlink() == Path("/bin/busybox")
    )
    assert "udhcpc" in (tmp_path / "etc/inittab").read_text()
    # No /proc remount, which would hide lxcfs.
    assert "mount" not in (tmp_path / "etc/init.d/rcS").read_text()


def test_busybox_free_reads_meminfo(tmp_path: Path) -> None:
    rootfs.build_busybox(tmp_path)
    out = subprocess.run(
        ["sh", str(tmp_path / "usr/bin/free"), "-m"], capture_output=True, text=True, check=True
    ).stdout
    total_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    mem = next(line for line in out.splitlines() if line.startswith("Mem:"))
    assert int(mem.split()[1]) == total_kib // 1024


def test_lxd_metadata_names_the_image() -> None:
    recipe = get_recipe(Settings(), "busybox")
    meta = rootfs.lxd_metadata(recipe, created=1700000000)
    assert "creation_date: 1700000000" in meta
    assert "os: 'BusyBox'" in meta
    assert "/etc/hostname" in meta
