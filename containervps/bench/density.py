"""The density loop: per kind, start instances in batches, sample host memory, then clean up."""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from containervps.bench import memory
from containervps.bench.model import DensitySpec, InstanceRecord, KindResult, StepSample
from containervps.bench.runners import Runner, host_cpu_job
from containervps.errors import ContainerVpsError

log = logging.getLogger(__name__)


class Events(Protocol):
    """Progress callbacks (the CLI draws a progress bar from them)."""

    def phase(self, kind: str, message: str, *, total: int | None = None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...


class NoEvents:
    def phase(self, kind: str, message: str, *, total: int | None = None) -> None:
        log.info("bench", extra={"kind": kind, "phase": message})

    def advance(self, amount: int = 1) -> None:
        return None


class Stop(Exception):
    """A stop condition of the kind's loop was met (its reason is the message)."""


class KindLoop:
    """Runs one kind from zero instances to its last step, keeping every sample."""

    def __init__(
        self, *, runner: Runner, spec: DensitySpec, rootfs: Path, events: Events, t0: float
    ) -> None:
        self.runner = runner
        self.spec = spec
        self.rootfs = rootfs
        self.events = events
        self.t0 = t0
        self.result = KindResult(kind=runner.kind)
        self.deadline = t0 + spec.max_minutes * 60
        self.total_bytes = memory.host_memory().total_bytes

    @property
    def up(self) -> list[InstanceRecord]:
        return [r for r in self.result.instances if r.error is None]

    def run(self) -> KindResult:
        """Measure the kind; stop conditions end it early without failing the run."""
        kind = self.runner.kind
        self.events.phase(kind, "preparing image")
        self.result.facts = self.runner.prepare()
        self.events.phase(kind, "baseline")
        self.result.baseline = self.sample(0, batch_seconds=0.0, launched=0)
        targets = self.targets()
        self.events.phase(kind, "starting instances", total=targets[-1])
        try:
            self.first_instance()
            for target in targets:
                self.grow_to(target)
        except Stop as stop:
            self.result.stop_reason = str(stop)
        if self.result.stop_reason is None:
            self.result.stop_reason = (
                "max instances reached" if self.spec.ramp else "all steps done"
            )
        return self.result

    def targets(self) -> list[int]:
        if not self.spec.ramp:
            return self.spec.targets(self.runner.kind)
        batch = max(1, self.spec.batch)
        return list(range(batch, self.spec.max_instances + 1, batch)) or [1]

    def first_instance(self) -> None:
        """Start one instance alone: single-instance probe latency and the overhead jobs."""
        rec = self.launch_batch(1, batch=0)[0]
        if rec.error:
            raise Stop(f"launch failure: {rec.error}")
        probes = [self.runner.probe(rec) * 1000 for _ in range(5)]
        self.result.probe_baseline_ms = sorted(probes)[len(probes) // 2]
        self.events.phase(self.runner.kind, "overhead jobs (CPU, IOPS)")
        self.result.overhead = self.overhead(rec)
        self.events.phase(self.runner.kind, "starting instances")

    def overhead(self, rec: InstanceRecord) -> dict[str, object]:
        loops = self.spec.cpu_loops
        out: dict[str, object] = {"cpu_loops": loops}
        try:
            out["cpu_host_s"] = host_cpu_job(self.rootfs, loops=loops)
            out["cpu_inside_s"] = self.runner.cpu_job(rec, loops=loops)
            out["iops"] = self.runner.iops(rec, writes=self.spec.iops_writes)
        except (ContainerVpsError, OSError, RuntimeError) as exc:
            out["error"] = str(exc)
        return out

    def grow_to(self, target: int) -> None:
        """Start instances until ``target`` are up, then sample (or raise Stop)."""
        if self.result.steps and self.result.steps[-1].n >= target:
            return
        started = time.perf_counter()
        recs = self.launch_batch(max(0, target - len(self.up)), batch=len(self.result.steps) + 1)
        batch_seconds = time.perf_counter() - started if recs else 0.0
        failed = [r for r in recs if r.error]
        sample = self.sample(len(self.up), batch_seconds=batch_seconds, launched=len(recs))
        self.result.steps.append(sample)
        if failed:
            raise Stop(f"launch failure: {failed[0].error}")
        self.check_limits(sample)

    def check_limits(self, sample: StepSample) -> None:
        base = self.result.probe_baseline_ms
        probe_p50 = sorted(sample.probe_ms)[len(sample.probe_ms) // 2] if sample.probe_ms else None
        if self.spec.ramp and base and probe_p50 and probe_p50 > 2 * base:
            raise Stop(f"probe latency: p50 {probe_p50:.0f} ms > 2x single ({base:.0f} ms)")

    def memory_guard(self) -> None:
        """Refuse to start another instance when free memory is under the headroom."""
        available = memory.host_memory().available_bytes
        if available < self.spec.headroom * self.total_bytes:
            raise Stop(
                f"memory: {available / memory.MIB:.0f} MiB available, under the "
                f"{self.spec.headroom:.0%} headroom"
            )
        if time.monotonic() > self.deadline:
            raise Stop(f"time budget of {self.spec.max_minutes:.0f} min used up")

    def launch_batch(self, count: int, *, batch: int) -> list[InstanceRecord]:
        """Start ``count`` instances, ``concurrency`` at a time (checking memory before each)."""
        first = len(self.result.instances)
        recs: list[InstanceRecord] = []
        stop: Stop | None = None
        pool = ThreadPoolExecutor(max_workers=max(1, self.spec.concurrency))
        try:
            futures = []
            for index in range(first, first + count):
                try:
                    self.memory_guard()
                except Stop as exc:
                    stop = exc
                    break
                futures.append(pool.submit(self.runner.launch, index, batch=batch))
                if len(futures) >= self.spec.concurrency:
                    futures[-self.spec.concurrency].result()  # keep memory checks honest
            for future in futures:
                rec = future.result()
                recs.append(rec)
                self.result.instances.append(rec)
                self.events.advance()
                if rec.error is None and self.spec.active:
                    self.runner.start_activity(rec)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if stop and not recs:
            raise stop
        if stop:
            self.result.stop_reason = str(stop)
        return recs

    def sample(self, n: int, *, batch_seconds: float, launched: int) -> StepSample:
        """Settle, read memory (with and without page cache), PSS, cgroups and probes."""
        self.events.phase(self.runner.kind, f"settling at N={n}")
        settled = memory.settle(max_seconds=self.spec.settle_seconds)
        after_drop: memory.HostMemory | None = None
        if self.spec.drop_caches and memory.drop_caches():
            after_drop = memory.settle(max_seconds=min(10.0, self.spec.settle_seconds))
        up = self.up
        pss = [memory.total_pss(r.host_pids) or 0 for r in up]
        cgroups = [memory.cgroup_memory_bytes(self.runner.cgroup(r)) or 0 for r in up]
        step = max(1, len(up) // max(1, self.spec.probes))
        probes = [self.runner.probe(r) * 1000 for r in up[::step][: self.spec.probes]]
        self.events.phase(self.runner.kind, "starting instances")
        return StepSample(
            kind=self.runner.kind,
            n=n,
            t=time.monotonic() - self.t0,
            used_bytes=settled.used_bytes,
            available_bytes=settled.available_bytes,
            used_after_drop_bytes=after_drop.used_bytes if after_drop else None,
            available_after_drop_bytes=after_drop.available_bytes if after_drop else None,
            pss_bytes=pss,
            cgroup_bytes=cgroups,
            probe_ms=probes,
            batch_seconds=batch_seconds,
            launched=launched,
        )


def keep_console(runner: Runner, output_dir: Path) -> None:
    """Copy the first VM's serial console into the report (evidence of what booted)."""
    console_log = getattr(runner, "console_log", None)
    if console_log is None:
        return
    source = console_log(0)
    if source.exists():
        output_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, output_dir / "vm0-console.log")
