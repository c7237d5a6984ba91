"""The host-side kill of a bounded exec (lxd/reaper.py), on real processes of this host.

The container is stood in for by this test's own cgroup; the integration test does it on LXD.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from containervps.lxd import reaper

# setsid: a new session; ( ... &): a double fork, re-parented away; env -i: no mark, but a
# child of a marked shell; the last sleep is the shell's foreground.
ESCAPES = "setsid sleep {0}1 & (sleep {0}2 &); env -i sleep {0}3 & sleep {0}4"


def _running(needles: list[str]) -> list[str]:
    """The needles that are the command line of a live process (zombies have none)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        found += [cmdline] if cmdline in needles else []
    return found


@pytest.fixture
def started() -> Iterator[tuple[str, list[str], subprocess.Popen[bytes]]]:
    """A shell that started processes which left its group, marked; killed at the end."""
    mark, stamp = secrets.token_hex(16), str(700 + secrets.randbelow(200))
    env = {**os.environ, reaper.MARK_VARIABLE: mark}
    shell = subprocess.Popen(["sh", "-c", ESCAPES.format(stamp)], env=env)
    needles = [f"sleep {stamp}{i}" for i in range(1, 5)]
    deadline = time.monotonic() + 5
    while len(_running(needles)) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_running(needles)) == 4
    yield mark, needles, shell
    own = reaper.container_cgroup(os.getpid())
    if own is not None:
        reaper.sweep(mark, own, seconds=0)  # whatever a failed test left
    shell.kill()
    shell.wait()


def test_everything_the_exec_started_is_killed(
    started: tuple[str, list[str], subprocess.Popen[bytes]],
) -> None:
    mark, needles, shell = started
    own = reaper.container_cgroup(os.getpid())
    assert own is not None
    assert reaper.sweep(mark, own) >= 4
    assert shell.wait(timeout=5) != 0
    assert _running(needles) == []


def test_nothing_outside_the_cgroup_is_touched(
    started: tuple[str, list[str], subprocess.Popen[bytes]],
) -> None:
    mark, needles, _ = started
    own = reaper.container_cgroup(os.getpid())
    assert own is not None
    elsewhere = reaper.Cgroup(hierarchy=own.hierarchy, path="/lxc.payload.not-this-one")
    assert reaper.sweep(mark, elsewhere) == 0
    assert reaper.sweep(secrets.token_hex(16), own) == 0  # another exec's mark
    assert len(_running(needles)) == 4


def test_kill_marked_without_a_visible_init_kills_nothing() -> None:
    assert reaper.kill_marked(init_pid=0, mark="x") == 0
    assert reaper.kill_marked(init_pid=2**22 + 1, mark="x") == 0  # no such process


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (  # cgroup v1 + unified (hybrid), busybox init: LXD 5.0 on this project's hosts
            "9:name=systemd:/lxc.payload.p_c1\n8:pids:/lxc.payload.p_c1\n0::/lxc.payload.p_c1\n",
            ("0:", "/lxc.payload.p_c1"),
        ),
        (  # cgroup v2, systemd in the guest moved its init into init.scope
            "0::/lxc.payload.p_c1/init.scope\n",
            ("0:", "/lxc.payload.p_c1"),
        ),
        (  # the unified hierarchy unused by the container: a v1 one that shows it
            "8:pids:/lxc.payload.p_c1\n0::/\n",
            ("8:pids", "/lxc.payload.p_c1"),
        ),
        ("0::/some/other/manager\n", ("0:", "/some/other/manager")),
    ],
)
def test_the_container_cgroup_is_read_from_its_init(
    lines: str, expected: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "cgroup").write_text(lines)
    monkeypatch.setattr(reaper, "PROC", tmp_path)
    found = reaper.container_cgroup(77)
    assert found is not None and (found.hierarchy, found.path) == expected
