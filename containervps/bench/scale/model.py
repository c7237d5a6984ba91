"""What a scale run asks for and what it measured, as plain dataclasses (JSON-ready)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["PATHS", "Ramp", "ScaleRun", "ScaleSpec", "Step"]

PATHS = ("api", "raw")  # through the tenant API; plain pylxd on the same LXD (the baseline)


@dataclass
class ScaleSpec:
    run_id: str
    target: int = 20  # servers per ramp
    batch: int = 10  # creates between two measurements
    concurrency: int = 8  # creates in flight at once
    image: str = "busybox"
    plan: str = "nano"
    disk_layout: str = "shared"  # shared | per_server (the platform's setting, for both ramps)
    baseline: bool = True  # also ramp through raw LXD
    check_ssh: bool = False  # at the top, every server's sshd must answer
    max_failures: int = 5  # stop a ramp after this many failed creates
    min_free_mib: int = 2048  # stop before MemAvailable falls below this
    budget_s: float = 3600.0  # stop a ramp after this long
    list_samples: int = 50  # GET /v1/servers (and one server) per step
    # Keep the operator's overcommit ratios and ramp until admission refuses a create: how
    # many really fit, beside `containervps capacity`'s prediction (run.host).
    until_full: bool = False
    output_dir: str = ""


@dataclass
class Step:
    """The host and the control plane after one batch of creates."""

    n: int  # servers alive
    created: int  # in this batch
    failed: int
    wall_s: float
    creates_per_s: float
    create_p50_s: float | None
    create_p95_s: float | None
    used_mib: float  # MemTotal - MemAvailable after drop_caches
    slab_unreclaimable_mib: float
    processes: int  # on the whole host
    loop_devices: int
    mounts: int
    lxd_cpu_pct: float  # of one core, during the batch
    lxd_rss_mib: float
    lxd_errors: int  # error lines LXD logged during the batch
    lxd_transaction_timeouts: int
    api_cpu_pct: float | None = None
    api_rss_mib: float | None = None
    list_p50_ms: float | None = None  # GET /v1/servers (first page)
    list_p99_ms: float | None = None
    show_p50_ms: float | None = None  # GET /v1/servers/{id}
    show_p99_ms: float | None = None
    sample_pass_s: float | None = None  # one `usage sample` pass over every server
    reconcile_pass_s: float | None = None  # one `reconcile --dry-run` pass


@dataclass
class Ramp:
    path: str
    baseline: dict[str, Any] = field(default_factory=dict)  # the host before the first create
    steps: list[Step] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # first lines of failed creates
    stopped_because: str = ""
    reachable: dict[str, Any] = field(default_factory=dict)  # exec (and sshd) at the top
    deleted: int = 0
    delete_s: float | None = None
    leftovers: list[str] = field(default_factory=list)  # what is left after the clean-up


@dataclass
class ScaleRun:
    spec: ScaleSpec
    started_at: str
    status: str = "running"
    error: str | None = None
    finished_at: str | None = None
    host: dict[str, Any] = field(default_factory=dict)
    ramps: list[Ramp] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
