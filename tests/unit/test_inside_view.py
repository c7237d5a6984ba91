"""The inside view of a VPS against its plan, the lxcfs options check, the tmpfs boot step."""

from __future__ import annotations

import subprocess
from pathlib import Path

from containervps.services.host import daemons
from containervps.services.host.check import lxcfs_options_probe
from containervps.services.host.inside_view import judge, loadavg_virtualised, parse
from containervps.services.images import guest_tmpfs, rootfs

VIEW = """\
mem_kib=262144
free_mib=256
nproc=1
cpuinfo=1
uptime=12.5
loadavg=0.10 0.05 0.01 1/9 4242
tasks=8
shm_kib=131072
root_kib=5242880
"""


def _judge(stdout: str, **overrides: object) -> list[str]:
    kwargs: dict = {"memory_mib": 256, "vcpus": 1, "max_uptime": 60.0, "loadavg": True}
    kwargs.update(overrides)
    return judge(parse(stdout), **kwargs)


def test_a_vps_showing_its_plan_has_no_problems() -> None:
    assert _judge(VIEW, disk_mib=5120) == []


def test_each_figure_off_the_plan_is_named() -> None:
    host_like = (
        VIEW.replace("mem_kib=262144", "mem_kib=24683520")
        .replace("nproc=1", "nproc=2")
        .replace("uptime=12.5", "uptime=15305.7")
        .replace("1/9 4242", "3/415 16103")
        .replace("shm_kib=131072", "shm_kib=12341760")
    )
    problems = " | ".join(_judge(host_like, disk_mib=1024))
    for word in ("MemTotal", "nproc", "uptime", "load average", "/dev/shm", "df /"):
        assert word in problems, problems


def test_loadavg_is_virtual_only_when_it_counts_the_vps_tasks() -> None:
    assert loadavg_virtualised(parse(VIEW))
    assert not loadavg_virtualised(parse(VIEW.replace("1/9 4242", "5/415 16103")))
    assert not loadavg_virtualised(parse("loadavg=garbage\ntasks=3\n"))
    # lxcfs without --enable-loadavg shows the host's line: expected then, not a problem.
    host_line = VIEW.replace("1/9 4242", "5/415 16103")
    assert _judge(host_line, loadavg=False) == []
    assert "load average" in " ".join(_judge(VIEW, loadavg=False))


def test_lxcfs_options_probe_reports_a_mismatch() -> None:
    ok = lxcfs_options_probe(want=["--enable-loadavg"], running=["-l"])
    assert ok.status == "ok" and "-l" in ok.detail
    off = lxcfs_options_probe(want=["--enable-loadavg"], running=[])
    assert off.status == "degraded" and "--enable-loadavg" in off.detail
    unknown = lxcfs_options_probe(want=["--enable-loadavg"], running=None)
    assert unknown.status == "ok" and "unknown" in unknown.detail


def test_lxcfs_option_spellings_compare_equal() -> None:
    assert daemons.normalise_lxcfs_options(["-f", "-l", "-u"]) == daemons.normalise_lxcfs_options(
        ["--disable-swap", "--enable-loadavg"]
    )


def test_size_script_is_valid_sh_and_sizes_dev_shm_at_half() -> None:
    subprocess.run(["sh", "-n"], input=guest_tmpfs.SIZE_TMPFS_SCRIPT, text=True, check=True)
    assert guest_tmpfs.SHARES["/dev/shm"] == 50
    assert 'size "$d" 50 create' in guest_tmpfs.SIZE_TMPFS_SCRIPT
    # A remount names source and target: BusyBox's mount given the target alone adds the
    # uid=/gid= /proc/mounts shows (host ids), which an isolated VPS cannot map (EINVAL).
    assert 'remount,${flags}size=${want}k" "${line%% *}" "$1"' in guest_tmpfs.SIZE_TMPFS_SCRIPT


def test_images_run_the_size_step_at_boot(tmp_path: Path) -> None:
    busybox = tmp_path / "busybox"
    rootfs.build_busybox(busybox)
    script = busybox / guest_tmpfs.SCRIPT_PATH.lstrip("/")
    assert script.read_text() == guest_tmpfs.SIZE_TMPFS_SCRIPT and script.stat().st_mode & 0o111
    assert guest_tmpfs.SCRIPT_PATH in (busybox / "etc/init.d/rcS").read_text()
    debian = tmp_path / "debian"
    rootfs._install_tmpfs_unit(debian)
    wants = debian / "etc/systemd/system/sysinit.target.wants" / guest_tmpfs.UNIT_NAME
    assert wants.readlink() == Path("/etc/systemd/system") / guest_tmpfs.UNIT_NAME
    unit = (debian / "etc/systemd/system" / guest_tmpfs.UNIT_NAME).read_text()
    assert f"ExecStart={guest_tmpfs.SCRIPT_PATH}" in unit
