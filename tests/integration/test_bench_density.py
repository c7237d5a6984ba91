"""A small real density run: LXD containers, Docker containers and one TCG VM, then nothing left.

Docker is started here (ensure_dockerd); a missing daemon fails the test instead of skipping it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from containervps.bench import store
from containervps.bench.docker_runner import LABEL
from containervps.bench.lxd_runner import project_name
from containervps.bench.memory import CGROUP_V1_MEMORY
from containervps.bench.model import DensitySpec
from containervps.bench.service import DensityBenchmark
from containervps.bench.vm_runner import run_processes
from containervps.cli import app
from containervps.config import Settings
from containervps.docker_rt import DockerRuntime
from containervps.lxd import Lxd
from containervps.services.host.daemons import ensure_dockerd

COUNTS = {"lxd": 3, "docker": 2, "vm": 1}


def _spec(run_id: str, output: Path, kinds: list[str]) -> DensitySpec:
    return DensitySpec(
        run_id=run_id,
        kinds=kinds,
        steps={kind: [1, count] for kind, count in COUNTS.items()},
        accel="tcg",
        boot_timeout=120,
        settle_seconds=5,
        cpu_loops=20_000,
        iops_writes=100,
        max_minutes=10,
        output_dir=str(output),
    )


def _assert_nothing_left(lxd: Lxd, run_id: str) -> None:
    assert lxd.host.get_project(project_name(run_id)) is None
    assert not [p for p in lxd.host.list_pools() if p.name.startswith(project_name(run_id))]
    assert DockerRuntime().labelled(LABEL, run_id) == []
    assert run_processes(f"cvps-bench-{run_id}-vm") == []
    assert not (CGROUP_V1_MEMORY / f"cvps-bench-{run_id}").exists()


@pytest.fixture
def docker_running(settings: Settings) -> None:
    ensure_dockerd(settings)


def test_small_density_run_is_complete_plausible_and_clean(
    settings: Settings, ready_host: Lxd, run_id: str, docker_running: None, tmp_path: Path
) -> None:
    bench_id = f"t{run_id}-all"
    run, paths = DensityBenchmark(settings, ready_host).run(
        _spec(bench_id, tmp_path / "report", ["lxd", "docker", "vm"])
    )
    assert run.status == "success", run.error
    assert {r.kind for r in run.results} == set(COUNTS)
    for result in run.results:
        assert result.error is None, result.error
        up = [i for i in result.instances if i.error is None]
        assert len(up) == COUNTS[result.kind], result.instances
        assert all(i.ready_s and i.ready_s >= (i.running_s or 0) > 0 for i in up)
        last = result.steps[-1]
        assert last.n == COUNTS[result.kind]
        assert len(last.pss_bytes) == last.n and min(last.pss_bytes) > 0
        assert len(last.cgroup_bytes) == last.n and min(last.cgroup_bytes) > 0
        assert last.probe_ms and result.probe_baseline_ms
        assert result.overhead.get("cpu_inside_s") and result.overhead.get("cpu_host_s")
    vm = next(r for r in run.results if r.kind == "vm")
    assert vm.facts["accelerator"] == "tcg"
    for name in ("json", "markdown", "html", "memory_vs_n", "start_latency", "density_ratio"):
        assert paths[name].stat().st_size > 0, name
    assert "14.5x" in paths["markdown"].read_text()
    assert (tmp_path / "report" / "vm0-console.log").exists()
    assert store.get_run(settings, bench_id).status == "success"
    _assert_nothing_left(ready_host, bench_id)

    cli = CliRunner()
    listed = cli.invoke(app, ["bench", "list", "--json"])
    assert listed.exit_code == 0 and bench_id in listed.output
    rendered = cli.invoke(app, ["bench", "report", bench_id, "-o", str(tmp_path / "again")])
    assert rendered.exit_code == 0, rendered.output
    assert (tmp_path / "again" / "density_ratio.png").exists()


class InterruptAfter:
    """Events that press Ctrl-C once ``count`` instances have started."""

    def __init__(self, count: int) -> None:
        self.count = count

    def phase(self, kind: str, message: str, *, total: int | None = None) -> None:
        return None

    def advance(self, amount: int = 1) -> None:
        self.count -= amount
        if self.count <= 0:
            raise KeyboardInterrupt


def test_interrupted_run_removes_everything(
    settings: Settings, ready_host: Lxd, run_id: str, tmp_path: Path
) -> None:
    bench_id = f"t{run_id}-int"
    spec = _spec(bench_id, tmp_path / "report", ["lxd"])
    run, paths = DensityBenchmark(settings, ready_host, events=InterruptAfter(2)).run(spec)
    assert run.status == "interrupted"
    assert paths["json"].exists()
    assert store.get_run(settings, bench_id).status == "interrupted"
    _assert_nothing_left(ready_host, bench_id)
