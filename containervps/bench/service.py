"""`bench density` as a use case: prepare, run every kind, always clean up, write reports."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from containervps import __version__
from containervps.bench import memory, store
from containervps.bench.analysis import analyse
from containervps.bench.bench_tenant import remove_bench_tenants
from containervps.bench.density import Events, KindLoop, NoEvents, keep_console
from containervps.bench.docker_runner import LABEL, DockerRunner
from containervps.bench.lxd_runner import LxdRunner
from containervps.bench.model import KINDS, WORKLOADS, DensitySpec, KindResult, RunRecord
from containervps.bench.report import write_reports
from containervps.bench.runners import Runner
from containervps.bench.vm_runner import VmRunner, run_processes
from containervps.config import Settings
from containervps.docker_rt import DockerRuntime
from containervps.errors import ContainerVpsError, InvalidInput
from containervps.lxd import Lxd, pool_owner
from containervps.services.host import daemons
from containervps.services.images.service import ImageService

log = logging.getLogger(__name__)


def new_run_id() -> str:
    """Sortable and unique: UTC time plus random hex."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def validate(spec: DensitySpec) -> None:
    """Reject specs that cannot run before anything is created."""
    unknown = [k for k in spec.kinds if k not in KINDS]
    if unknown or not spec.kinds:
        raise InvalidInput(f"unknown kinds {unknown}", resolution=f"use {', '.join(KINDS)}")
    if spec.workload not in WORKLOADS:
        raise InvalidInput(
            f"unknown workload {spec.workload!r}", resolution=f"use {', '.join(WORKLOADS)}"
        )
    if spec.memory_mib < 32 or spec.vcpus < 1 or spec.concurrency < 1:
        raise InvalidInput("memory must be >= 32 MiB, vCPUs and concurrency >= 1")
    if not 0 <= spec.headroom < 1:
        raise InvalidInput("headroom is a share of memory between 0 and 1")


def host_facts(settings: Settings, lxd: Lxd) -> dict[str, Any]:
    """What the reader needs to judge the figures: machine, kernel, versions."""
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "",
        )
    server = lxd.host.server_info()
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "mem_total_mib": memory.host_memory().total_bytes // memory.MIB,
        "lxd": server.version,
        "storage_pool": settings.storage_pool,
        "containervps": __version__,
        "python": platform.python_version(),
    }


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM interrupts the run like Ctrl-C does, so the cleanup in ``finally`` runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def recorded_outcome(run: Any) -> Iterator[None]:
    """Set ``run.status`` and ``run.error`` from how the block ends: success, Ctrl-C or
    SIGTERM (swallowed: the caller's clean-up and reports follow), a domain error (kept as
    the run's error), or a bug (re-raised)."""
    try:
        yield
        run.status = "success"
    except KeyboardInterrupt:
        run.status, run.error = "interrupted", "interrupted (Ctrl-C or SIGTERM)"
    except ContainerVpsError as exc:
        run.status, run.error = "failed", exc.one_line()
    except Exception as exc:
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
        raise


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Ignore Ctrl-C/SIGTERM while cleaning up (a second Ctrl-C must not leave debris)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class DensityBenchmark:
    """Runs a density spec against the real LXD, Docker and QEMU of this host."""

    def __init__(self, settings: Settings, lxd: Lxd, *, events: Events | None = None) -> None:
        self.settings = settings
        self.lxd = lxd
        self.events = events or NoEvents()

    def make_runner(self, kind: str, spec: DensitySpec, rootfs: Path) -> Runner:
        if kind == "lxd":
            return LxdRunner(settings=self.settings, lxd=self.lxd, spec=spec)
        if kind == "docker":
            daemons.ensure_dockerd(self.settings)
            return DockerRunner(spec=spec, rootfs=rootfs)
        return VmRunner(settings=self.settings, spec=spec, rootfs=rootfs)

    def run(self, spec: DensitySpec) -> tuple[RunRecord, dict[str, Path]]:
        """Run every kind in turn; whatever happens, remove what was created and write reports."""
        validate(spec)
        out_dir = Path(spec.output_dir or self.settings.reports_dir / spec.run_id)
        spec.output_dir = str(out_dir)
        run = RunRecord(spec=spec, started_at=datetime.now(UTC).isoformat(timespec="seconds"))
        store.record_start(
            self.settings,
            run_id=spec.run_id,
            kind="density",
            workload=spec.workload,
            kinds=spec.kinds,
            params=asdict(spec),
            report_dir=out_dir,
        )
        t0 = time.monotonic()
        try:
            with recorded_outcome(run), sigterm_as_interrupt():
                run.host = host_facts(self.settings, self.lxd)
                self.events.phase("all", f"image {spec.workload}")
                # The same build feeds LXD (alias), Docker (import) and the VM disk.
                images = ImageService(self.settings, self.lxd)
                images.build(spec.workload)
                rootfs = images.rootfs_dir(spec.workload)
                for kind in spec.kinds:
                    self.run_kind(kind, spec, rootfs, out_dir, t0, into=run.results)
        finally:
            run.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
            with shielded():
                paths = write_reports(run.to_dict(), out_dir)
                store.record_finish(
                    self.settings,
                    spec.run_id,
                    status=run.status,
                    error=run.error,
                    summary=headline(run),
                )
        return run, paths

    def run_kind(
        self,
        kind: str,
        spec: DensitySpec,
        rootfs: Path,
        out_dir: Path,
        t0: float,
        *,
        into: list[KindResult],
    ) -> None:
        """One kind from N=0 to its last step; partial results and cleanup survive Ctrl-C."""
        runner = self.make_runner(kind, spec, rootfs)
        loop = KindLoop(runner=runner, spec=spec, rootfs=rootfs, events=self.events, t0=t0)
        into.append(loop.result)
        try:
            loop.run()
        except ContainerVpsError as exc:
            loop.result.error = exc.one_line()
        except KeyboardInterrupt:
            loop.result.error = "interrupted"
            raise
        finally:
            with shielded():
                self.events.phase(kind, "cleaning up")
                with contextlib.suppress(Exception):
                    keep_console(runner, out_dir)
                try:
                    loop.result.facts["removed"] = len(runner.cleanup())
                except ContainerVpsError as exc:
                    loop.result.facts["cleanup_error"] = exc.one_line()
                    raise ContainerVpsError(
                        f"cleaning up the {kind} instances failed: {exc.one_line()}",
                        resolution=f"run `containervps bench clean {spec.run_id}`",
                    ) from exc


def headline(run: RunRecord) -> dict[str, Any]:
    """The few figures stored in SQLite for `bench list`."""
    figures = analyse(run.to_dict())
    return {
        "mib_per_instance": {k: v["mib_per_instance"] for k, v in figures["kinds"].items()},
        "ready_p50_s": {k: v["ready_s"]["p50"] for k, v in figures["kinds"].items()},
        "max_n": {k: v["max_n"] for k, v in figures["kinds"].items()},
        "vm_vs_lxd": figures["ratios"].get("vm_vs_lxd"),
        "docker_vs_lxd": figures["ratios"].get("docker_vs_lxd"),
    }


def clean_leftovers(settings: Settings, lxd: Lxd, *, run_id: str | None = None) -> list[str]:
    """Remove what killed runs left behind (all bench runs, or one): projects, containers, their
    disk pools, VMs; without a run id also the tenants of `bench api` and `bench scale`."""
    prefix = f"cvps-bench-{run_id}" if run_id else "cvps-bench-"
    removed: list[str] = [] if run_id else remove_bench_tenants(settings, lxd)
    projects = {p for p in lxd.host.list_projects() if p.startswith(prefix)}
    owners = (pool_owner(p.name) for p in lxd.host.list_pools())
    projects |= {owner[0] for owner in owners if owner and owner[0].startswith(prefix)}
    for project in sorted(projects):
        spec = DensitySpec(run_id=project.removeprefix("cvps-bench-"), kinds=["lxd"])
        removed += LxdRunner(settings=settings, lxd=lxd, spec=spec).cleanup()
    if daemons.docker_answers():
        docker = DockerRuntime()
        for container_id in docker.labelled(LABEL, run_id):
            docker.remove(container_id)
            removed.append(f"docker:{container_id[:12]}")
    for pid in run_processes(prefix):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            removed.append(f"qemu-pid:{pid}")
    live = {(i.project, i.name) for i in lxd.instances.everywhere()}
    logs = lxd.instances.logs
    for project, name in logs.stale(
        owned=lambda p: p.startswith(prefix), instances=live, min_age=0
    ):
        logs.remove(project=project, name=name)
        removed.append(f"log:{project}/{name}")
    for cgroup in memory.CGROUP_V1_MEMORY.glob(f"{prefix}*"):
        time.sleep(0.5)  # killed QEMU processes leave their cgroup asynchronously
        memory.BenchCgroup(cgroup.name).remove()
        removed.append(f"cgroup:{cgroup.name}")
    return removed
