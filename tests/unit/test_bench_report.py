"""Reports of a density run: figures, the ratio sentence and every file, from a synthetic run."""

from __future__ import annotations

from pathlib import Path

from containervps.bench.analysis import analyse, ratio_sentence
from containervps.bench.model import (
    DensitySpec,
    InstanceRecord,
    KindResult,
    RunRecord,
    StepSample,
)
from containervps.bench.report import load_raw, write_reports

MIB = 1 << 20
TOTAL = 24_000 * MIB


def _sample(kind: str, n: int, per_instance_mib: float) -> StepSample:
    used = int((600 + per_instance_mib * n) * MIB)
    return StepSample(
        kind=kind,
        n=n,
        t=float(n),
        used_bytes=used,
        available_bytes=TOTAL - used,
        used_after_drop_bytes=used - 50 * MIB,
        available_after_drop_bytes=TOTAL - used + 50 * MIB,
        pss_bytes=[int(per_instance_mib * MIB)] * n,
        cgroup_bytes=[2 * MIB] * n,
        probe_ms=[20.0] * min(n, 3),
        batch_seconds=2.0 if n else 0.0,
        launched=n,
    )


def _kind(kind: str, per_instance_mib: float, counts: list[int]) -> KindResult:
    result = KindResult(kind=kind, facts={"accelerator": "tcg"} if kind == "vm" else {})
    result.baseline = _sample(kind, 0, per_instance_mib)
    result.steps = [_sample(kind, n, per_instance_mib) for n in counts]
    result.instances = [
        InstanceRecord(
            kind=kind,
            index=i,
            name=f"{kind}-{i}",
            batch=1,
            running_s=0.1 * (i + 1),
            ready_s=0.2 * (i + 1),
            host_pids=[1],
        )
        for i in range(counts[-1])
    ]
    result.probe_baseline_ms = 15.0
    result.overhead = {
        "cpu_host_s": 1.0,
        "cpu_inside_s": 1.1,
        "iops": {"inside_iops": 900.0, "host_iops": 1000.0},
    }
    result.stop_reason = "all steps done"
    return result


def _run() -> RunRecord:
    spec = DensitySpec(run_id="unit-1", kinds=["lxd", "docker", "vm"], steps={"*": [10, 20]})
    run = RunRecord(spec=spec, started_at="2026-01-01T00:00:00+00:00", status="success")
    run.results = [
        _kind("lxd", 12.0, [10, 20]),
        _kind("docker", 6.0, [10, 20]),
        _kind("vm", 180.0, [1, 2]),
    ]
    return run


def test_figures_from_a_synthetic_run() -> None:
    figures = analyse(_run().to_dict())
    lxd, vm = figures["kinds"]["lxd"], figures["kinds"]["vm"]
    assert round(lxd["mib_per_instance"], 6) == 12.0
    assert round(vm["mib_per_instance"], 6) == 180.0
    assert round(figures["ratios"]["vm_vs_lxd"], 6) == 15.0
    assert lxd["ready_s"]["n"] == 20
    assert lxd["projected_max_instances"] > vm["projected_max_instances"] > 0
    assert round(lxd["cpu_overhead_ratio"], 6) == 1.1
    assert round(lxd["iops_ratio"], 6) == 0.9


def test_ratio_sentence_names_both_claims() -> None:
    sentence = ratio_sentence(analyse(_run().to_dict()), workload="busybox")
    assert "15.0x" in sentence and "5-6x" in sentence and "14.5x" in sentence
    assert "TCG" in sentence


def test_every_report_file_is_written_and_rerenderable(tmp_path: Path) -> None:
    paths = write_reports(_run().to_dict(), tmp_path)
    for name in ("json", "markdown", "html", "memory_vs_n", "start_latency", "density_ratio"):
        assert paths[name].stat().st_size > 0, name
    for chart in ("memory_vs_n", "start_latency", "density_ratio"):
        assert paths[chart].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = paths["html"].read_text()
    assert 'src="memory_vs_n.png"' in html and "Canonical" in html
    again = write_reports(load_raw(tmp_path), tmp_path / "again")
    assert again["markdown"].read_text() == paths["markdown"].read_text()


def test_a_run_without_vm_says_no_ratio(tmp_path: Path) -> None:
    run = _run()
    run.results = run.results[:1]
    paths = write_reports(run.to_dict(), tmp_path)
    assert "No container-to-VM density ratio" in paths["markdown"].read_text()
