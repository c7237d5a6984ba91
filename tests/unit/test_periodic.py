"""The child process of the API's periodic passes: started only when a pass is on, ended with
the API, also when the API is killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from containervps.api.periodic import Periodic
from containervps.config import Settings

# A pass that never comes due: the child only waits, so nothing here touches the host.
IDLE = {"usage_sample_interval": 0.0, "lxcfs_watch_interval": 3600.0}


def _idle(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path).model_copy(update=IDLE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[0]
    return status != "Z"


def _wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_no_child_when_every_pass_is_off(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, usage_sample_interval=0, lxcfs_watch_interval=0)
    periodic = Periodic(settings)
    periodic.start()
    assert periodic.process is None
    periodic.shutdown()


def test_child_runs_until_shutdown(tmp_path: Path) -> None:
    periodic = Periodic(_idle(tmp_path))
    periodic.start()
    assert periodic.process is not None and periodic.process.pid is not None
    pid = periodic.process.pid
    time.sleep(1.0)
    assert _alive(pid)
    periodic.shutdown()
    assert _wait_gone(pid, 1) and periodic.process.exitcode == 0


def test_child_ends_when_the_api_is_killed(tmp_path: Path) -> None:
    script = f"""
import os, sys, time
from containervps.api.periodic import Periodic
from containervps.config import Settings
p = Periodic(Settings(data_dir={str(tmp_path)!r}).model_copy(update={IDLE!r}))
p.start()
print(p.process.pid, flush=True)
time.sleep(1.5)
os._exit(9)  # no shutdown, as under SIGKILL
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    child = int(out.stdout.split()[0])
    assert out.returncode == 9, out.stderr
    assert _wait_gone(child), f"periodic child {child} outlived its API"
