"""One ramp: batches of concurrent creates until the target or a stop condition, the host
measured after each batch."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from containervps.bench import memory
from containervps.bench.scale.model import Ramp, ScaleSpec, Step
from containervps.bench.scale.probe import LogWatch, ProcessMeter, host_figures
from containervps.bench.stats import percentile

__all__ = ["RampLoop"]

T = TypeVar("T")
FULL = "resource_unavailable"  # the error code of a create the host has no room for
Say = Callable[[str], None]


@dataclass
class RampLoop(Generic[T]):
    """Creates ``spec.target`` instances with ``create`` (name -> handle), ``spec.batch`` at a
    time, and appends one Step per batch to ``ramp``; ``extra`` adds control-plane figures.

    ``made`` holds every handle created so far, also after Ctrl-C, for the clean-up.
    """

    ramp: Ramp
    spec: ScaleSpec
    create: Callable[[str], T]
    lxd: ProcessMeter
    log: LogWatch
    say: Say
    api: ProcessMeter | None = None
    extra: Callable[[list[T]], dict[str, Any]] = lambda _: {}
    made: list[T] = field(default_factory=list)

    def run(self) -> None:
        spec, started = self.spec, time.monotonic()
        self.ramp.baseline = vars(host_figures())
        failed = 0
        while True:
            reason = self._stop_reason(failed, started)
            if reason:
                self.ramp.stopped_because = reason
                self.say(f"{self.ramp.path}: stopped at {len(self.made)}: {reason}")
                return
            step = self._batch(min(spec.batch, spec.target - len(self.made)))
            failed += step.failed
            self.ramp.steps.append(step)
            self.say(
                f"{self.ramp.path}: n={step.n} {step.creates_per_s:.2f} creates/s, "
                f"p50 {step.create_p50_s or 0:.1f} s, used {step.used_mib:.0f} MiB, "
                f"LXD {step.lxd_cpu_pct:.0f}% CPU, {step.failed} failed"
            )

    def _stop_reason(self, failed: int, started: float) -> str:
        spec = self.spec
        if len(self.made) >= spec.target:
            return f"reached the target of {spec.target}"
        refused = [e for e in self.ramp.errors if FULL in e]
        if spec.until_full and refused:
            return f"host full: {refused[0]}"
        if failed >= spec.max_failures:
            return f"{failed} creates failed (--max-failures {spec.max_failures})"
        free_mib = memory.host_memory().available_bytes / memory.MIB
        if free_mib < spec.min_free_mib:
            return f"MemAvailable {free_mib:.0f} MiB < --min-free-mib {spec.min_free_mib}"
        if time.monotonic() - started > spec.budget_s:
            return f"time budget of {spec.budget_s:.0f} s spent"
        return ""

    def _timed(self, name: str) -> tuple[T | None, float, str]:
        t0 = time.perf_counter()
        try:
            handle = self.create(name)
        except Exception as exc:  # one failed create is a figure, not the end of the run
            return None, time.perf_counter() - t0, f"{name}: {type(exc).__name__}: {exc}"
        return handle, time.perf_counter() - t0, ""

    def _batch(self, size: int) -> Step:
        first = len(self.made) + len(self.ramp.errors)
        names = [f"{self.ramp.path}-{first + i}" for i in range(size)]
        self.lxd.read()  # CPU shares cover the batch only
        if self.api:
            self.api.read()
        t0 = time.perf_counter()
        times: list[float] = []
        pool = ThreadPoolExecutor(max_workers=self.spec.concurrency)
        try:
            for handle, seconds, error in pool.map(self._timed, names):
                if handle is None:
                    self.ramp.errors.append(error.splitlines()[0][:300])
                else:
                    self.made.append(handle)
                    times.append(seconds)
        finally:
            # Ctrl-C: creates not started yet are dropped; those in flight end, and the
            # clean-up finds them in the tenant's projects.
            pool.shutdown(wait=True, cancel_futures=True)
        wall = time.perf_counter() - t0
        lxd_cpu, lxd_rss = self.lxd.read()
        api_cpu, api_rss = self.api.read() if self.api else (None, None)
        errors, timeouts = self.log.read()
        host = host_figures()
        return Step(
            n=len(self.made),
            created=len(times),
            failed=size - len(times),
            wall_s=wall,
            creates_per_s=len(times) / wall if wall else 0.0,
            create_p50_s=percentile(times, 50),
            create_p95_s=percentile(times, 95),
            **vars(host),
            lxd_cpu_pct=lxd_cpu,
            lxd_rss_mib=lxd_rss,
            lxd_errors=errors,
            lxd_transaction_timeouts=timeouts,
            api_cpu_pct=api_cpu,
            api_rss_mib=api_rss,
            **self.extra(self.made),
        )
