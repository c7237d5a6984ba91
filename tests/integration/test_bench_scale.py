"""`bench scale` on the real LXD: a small ramp both ways, its report, and nothing left behind,
also when interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from containervps.bench import store
from containervps.bench.scale.model import ScaleSpec
from containervps.bench.scale.runner import ScaleBenchmark
from containervps.bench.service import new_run_id
from containervps.config import Settings
from containervps.lxd import Lxd

pytestmark = pytest.mark.usefixtures("cp_settings")


def _footprint(lxd: Lxd) -> tuple[set[str], set[str], int]:
    """Projects, pools and instances on the whole host."""
    projects = set(lxd.host.list_projects())
    return projects, {p.name for p in lxd.host.list_pools()}, len(lxd.instances.everywhere())


def test_small_scale_run_ramps_both_paths_reports_and_cleans_up(
    cp_settings: Settings, ready_host: Lxd, tmp_path: Path
) -> None:
    before = _footprint(ready_host)
    spec = ScaleSpec(
        run_id=new_run_id(), target=20, batch=10, concurrency=4, list_samples=10,
        output_dir=str(tmp_path / "report"),
    )  # fmt: skip
    run, paths = ScaleBenchmark(cp_settings, ready_host).run(spec)
    assert run.status == "success", run.error
    assert [r.path for r in run.ramps] == ["api", "raw"]
    for ramp in run.ramps:
        assert [s.n for s in ramp.steps] == [10, 20] and not ramp.errors, ramp.errors
        assert ramp.reachable["running"] == ramp.reachable["exec_ok"] == 20, ramp.reachable
        assert ramp.deleted == 20 and ramp.leftovers == [], ramp.leftovers
        assert all(s.used_mib > 0 and s.creates_per_s > 0 for s in ramp.steps)
    api = run.ramps[0].steps[-1]
    assert api.list_p99_ms and api.sample_pass_s is not None and api.reconcile_pass_s is not None
    assert run.ramps[1].steps[-1].list_p99_ms is None  # raw LXD has no API

    # Reports: the raw steps, the figures, a chart per figure; the run is recorded.
    raw = json.loads(paths["json"].read_text())
    assert raw["figures"]["ramps"]["api"]["n"] == raw["figures"]["ramps"]["raw"]["n"] == 20
    assert raw["figures"]["api_vs_raw_p50"] > 0
    assert "| servers reached | 20 | 20 |" in paths["markdown"].read_text()
    assert paths["creates_per_s_vs_n"].stat().st_size > 0 and "used_mib_vs_n" in paths
    assert "<img" in paths["html"].read_text()
    row = store.get_run(cp_settings, spec.run_id)
    assert (row.kind, row.status, row.kinds) == ("scale", "success", "api,raw")
    assert row.summary["ramps"]["api"]["n"] == 20
    # Both tenants, their projects, containers and disks are gone.
    assert _footprint(ready_host) == before


def test_interrupted_scale_run_removes_what_it_made(cp_settings: Settings, ready_host: Lxd) -> None:
    before = _footprint(ready_host)
    proc = subprocess.Popen(
        [sys.executable, "-m", "containervps", "bench", "scale", "--target", "40", "--batch",
         "4", "--concurrency", "4", "--list-samples", "5", "--no-baseline"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=dict(os.environ),
        text=True,
        # As from a terminal: a run started in the background (`cmd &` in a script) inherits
        # SIGINT ignored, and Python then keeps ignoring it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 300
    seen = []
    for line in proc.stderr:  # until the first batch is measured
        seen.append(line)
        if "api: n=" in line or time.monotonic() > deadline:
            break
    assert any("api: n=4 " in line for line in seen), seen
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=300) == 1, rest
    assert "deleting" in rest
    runs = [r for r in store.list_runs(cp_settings) if r.kind == "scale"]
    assert runs[0].status == "interrupted", runs[0]
    assert _footprint(ready_host) == before
