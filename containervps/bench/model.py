"""What a density run records: its parameters, every instance and every memory sample."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["lxd", "vm", "docker"]
KINDS: tuple[Kind, ...] = ("lxd", "docker", "vm")
WORKLOADS = ("busybox", "debian-12")
KIND_LABELS = {
    "lxd": "LXD system container",
    "docker": "Docker app container",
    "vm": "QEMU full VM",
}


@dataclass
class DensitySpec:
    """Everything a run was asked to do (stored with its results)."""

    run_id: str
    kinds: list[str]
    workload: str = "busybox"
    active: bool = False  # every instance runs a small CPU and memory load
    steps: dict[str, list[int]] = field(default_factory=dict)  # kind -> instance counts
    ramp: bool = False  # grow by ``batch`` until a stop condition instead of ``steps``
    batch: int = 10
    max_instances: int = 500  # cap of a ramp
    memory_mib: int = 256
    vcpus: int = 1
    concurrency: int = 4
    headroom: float = 0.10  # share of MemTotal kept free (projection and ramp stop)
    accel: str = "auto"  # auto | kvm | tcg (VMs)
    tcg_tb_mib: int | None = None  # cap TCG's translation cache (QEMU default: 1 GiB)
    boot_timeout: float = 180.0
    settle_seconds: float = 30.0
    drop_caches: bool = True
    probes: int = 5  # instances probed per step
    cpu_loops: int = 200_000  # iterations of the fixed CPU-bound shell job
    iops_writes: int = 1000  # 4 KiB direct writes of the IOPS job
    max_minutes: float = 120.0  # whole-run budget
    output_dir: str = ""

    def targets(self, kind: str) -> list[int]:
        """The instance counts to sample at for ``kind`` (ascending, no duplicates)."""
        return sorted(set(self.steps.get(kind) or self.steps.get("*") or [1]))


@dataclass
class InstanceRecord:
    """One instance: how long it took to come up and what it costs on the host."""

    kind: str
    index: int
    name: str
    batch: int
    running_s: float | None = None  # request -> running
    ready_s: float | None = None  # request -> a command answers inside (sshd for debian-12)
    created_s: float | None = None  # request -> created (LXD: the clone alone)
    error: str | None = None
    host_pids: list[int] = field(default_factory=list)


@dataclass
class StepSample:
    """Host memory with N instances up, after they settled."""

    kind: str
    n: int
    t: float  # seconds since the run started
    used_bytes: int
    available_bytes: int
    used_after_drop_bytes: int | None
    available_after_drop_bytes: int | None
    pss_bytes: list[int]  # host-side processes per instance (lxc monitor, shim, qemu)
    cgroup_bytes: list[int]  # memory charged to each instance's cgroup
    probe_ms: list[float]  # a trivial command answered inside, per probed instance
    batch_seconds: float = 0.0  # wall time to start this batch
    launched: int = 0  # instances started in this batch


@dataclass
class KindResult:
    kind: str
    facts: dict[str, Any] = field(default_factory=dict)  # image, accelerator, guest changes
    baseline: StepSample | None = None  # N = 0
    steps: list[StepSample] = field(default_factory=list)
    instances: list[InstanceRecord] = field(default_factory=list)
    probe_baseline_ms: float | None = None  # single instance, before the others start
    overhead: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    error: str | None = None


@dataclass
class RunRecord:
    spec: DensitySpec
    started_at: str
    finished_at: str | None = None
    status: str = "running"  # running | success | failed | interrupted
    error: str | None = None
    host: dict[str, Any] = field(default_factory=dict)
    results: list[KindResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The raw JSON document of the run."""
        return {"format": 1, **asdict(self)}
