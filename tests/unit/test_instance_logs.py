"""Which LXD log directories the platform removes (lxd/instance_logs.py), on a scratch dir."""

from __future__ import annotations

import os
import time
from pathlib import Path

from containervps.lxd.instance_logs import InstanceLogs


def test_paths_follow_lxds_naming(tmp_path: Path) -> None:
    logs = InstanceLogs(tmp_path)
    assert logs.path(project="default", name="c1") == tmp_path / "c1"
    assert logs.path(project="cvps-t-1", name="web") == tmp_path / "cvps-t-1_web"


def test_remove_only_for_a_standalone_instance(tmp_path: Path) -> None:
    logs = InstanceLogs(tmp_path)
    for name in ("a", "b"):
        logs.path(project="p", name=name).mkdir()
    logs.remove(project="p", name="a", location="none")
    logs.remove(project="p", name="b", location="member2")  # its logs are on the member
    logs.remove(project="p", name="absent")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p_b"]


def test_stale_needs_an_owned_project_no_instance_and_age(tmp_path: Path) -> None:
    logs = InstanceLogs(tmp_path)
    old = time.time() - 600
    for project, name, aged in [
        ("cvps-t-1", "gone", True),
        ("cvps-t-1", "live", True),
        ("cvps-t-1", "new", False),
        ("other", "gone", True),
        ("default-only", "", True),
    ]:
        path = tmp_path / (f"{project}_{name}" if name else project)
        path.mkdir()
        if aged:
            os.utime(path, (old, old))
    found = logs.stale(
        owned=lambda p: p.startswith("cvps-t-"), instances={("cvps-t-1", "live")}, min_age=300
    )
    assert found == [("cvps-t-1", "gone")]
    assert InstanceLogs(tmp_path / "missing").stale(owned=bool, instances=set(), min_age=0) == []


def test_tail_reads_the_last_lines_of_a_log(tmp_path: Path) -> None:
    logs = InstanceLogs(tmp_path)
    logs.path(project="p", name="c1").mkdir()
    (logs.path(project="p", name="c1") / "console.log").write_text(
        "".join(f"line {i}\n" for i in range(40))
    )
    assert logs.tail(project="p", name="c1", file="console.log", lines=3) == [
        "line 37",
        "line 38",
        "line 39",
    ]
    assert logs.tail(project="p", name="c1", file="lxc.log") == []
    assert logs.tail(project="p", name="absent", file="console.log") == []
