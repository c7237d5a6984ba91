"""`bench scale` as a use case: the API ramp, then the raw LXD ramp, each cleaned up whatever
happens; reports written and the run recorded in SQLite."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from containervps.bench import store
from containervps.bench.api_baseline import DirectBaseline
from containervps.bench.api_process import ApiProcess
from containervps.bench.bench_tenant import make_bench_tenant, ready_plan, remove_bench_tenant
from containervps.bench.lxd_runner import project_name
from containervps.bench.scale.environment import predicted_fit, ramp_env
from containervps.bench.scale.model import PATHS, Ramp, ScaleRun, ScaleSpec
from containervps.bench.scale.paths import ApiPath, RawPath, leftovers
from containervps.bench.scale.probe import LogWatch, ProcessMeter, host_figures, lxd_daemon_pid
from containervps.bench.scale.ramp import RampLoop
from containervps.bench.scale.report import headline, write_reports
from containervps.bench.service import (
    clean_leftovers,
    host_facts,
    recorded_outcome,
    shielded,
    sigterm_as_interrupt,
)
from containervps.config import Settings
from containervps.db.models import Plan
from containervps.errors import ContainerVpsError, InvalidInput
from containervps.lxd import Lxd

__all__ = ["ScaleBenchmark", "validate"]

Say = Callable[[str], None]
LAYOUTS = ("shared", "per_server")


def validate(spec: ScaleSpec) -> None:
    """Reject specs that cannot run before anything is created."""
    if spec.target < 1 or spec.batch < 1 or spec.concurrency < 1:
        raise InvalidInput("--target, --batch and --concurrency must be at least 1")
    if spec.disk_layout not in LAYOUTS:
        raise InvalidInput(
            f"unknown disk layout {spec.disk_layout!r}", resolution=f"use {' or '.join(LAYOUTS)}"
        )
    if spec.list_samples < 1 or spec.max_failures < 1:
        raise InvalidInput("--list-samples and --max-failures must be at least 1")


class ScaleBenchmark:
    """Ramps real servers on this host's LXD, through the API and raw, and measures both."""

    def __init__(self, settings: Settings, lxd: Lxd, *, say: Say = lambda _: None) -> None:
        self.base_settings, self.lxd, self.say = settings, lxd, say

    def run(self, spec: ScaleSpec) -> tuple[ScaleRun, dict[str, Path]]:
        validate(spec)
        settings = self.base_settings.model_copy(update={"disk_layout": spec.disk_layout})
        out_dir = Path(spec.output_dir or settings.reports_dir / spec.run_id)
        spec.output_dir = str(out_dir)
        run = ScaleRun(spec=spec, started_at=_now())
        paths = [p for p in PATHS if p == "api" or spec.baseline]
        store.record_start(
            settings,
            run_id=spec.run_id,
            kind="scale",
            workload=spec.image,
            kinds=paths,
            params=asdict(spec),
            report_dir=out_dir,
        )
        try:
            with recorded_outcome(run), sigterm_as_interrupt():
                plan = ready_plan(settings, self.lxd, image=spec.image, plan=spec.plan)
                env = ramp_env(
                    settings,
                    self.lxd,
                    plan=plan,
                    target=spec.target + spec.max_failures,
                    until_full=spec.until_full,
                )
                run.host = {**host_facts(settings, self.lxd), "disk_layout": spec.disk_layout}
                if spec.until_full:
                    run.host["capacity_prediction"] = predicted_fit(settings, self.lxd, plan.name)
                run.host["api_env"] = env
                run.ramps.append(Ramp(path="api"))
                self._api_ramp(settings, spec, plan, env, run.ramps[-1])
                reached = run.ramps[0].steps[-1].n if run.ramps[0].steps else 0
                if spec.baseline and reached:
                    # Raw LXD up to the N the API reached: the two compared at the same N.
                    run.ramps.append(Ramp(path="raw"))
                    raw_spec = replace(spec, target=reached)
                    self._raw_ramp(settings, raw_spec, plan, env, run.ramps[-1])
        finally:
            run.finished_at = _now()
            with shielded():
                document = run.to_dict()
                reports = write_reports(document, out_dir)
                store.record_finish(
                    settings,
                    spec.run_id,
                    status=run.status,
                    error=run.error,
                    summary=headline(document),
                )
        return run, reports

    def _meters(self, settings: Settings) -> tuple[ProcessMeter, LogWatch]:
        return ProcessMeter(lxd_daemon_pid()), LogWatch(settings.log_dir / "lxd.log")

    def _api_ramp(
        self, settings: Settings, spec: ScaleSpec, plan: Plan, env: dict[str, str], ramp: Ramp
    ) -> None:
        tenant = make_bench_tenant(
            settings, self.lxd, plan=plan, servers=spec.target + spec.max_failures
        )
        api: ApiProcess | None = None
        try:
            api = ApiProcess(
                settings, tenant.token, env=env, log_file=Path(spec.output_dir) / "api.log"
            )
            path = ApiPath(settings, self.lxd, api, plan=spec.plan, image=spec.image)
            lxd_meter, log = self._meters(settings)
            loop: RampLoop[int] = RampLoop(
                ramp=ramp,
                spec=spec,
                create=path.create,
                lxd=lxd_meter,
                api=ProcessMeter(api.proc.pid),
                log=log,
                say=self.say,
                extra=lambda made: path.control_plane(made, samples=spec.list_samples),
            )
            try:
                loop.run()
                self.say(f"api: checking {len(loop.made)} servers answer")
                ramp.reachable = path.reachable(
                    loop.made, check_ssh=spec.check_ssh, workers=spec.concurrency
                )
            finally:
                self._delete(ramp, lambda: path.delete_all(loop.made, workers=spec.concurrency))
        finally:
            if api is not None:
                api.close()
            with shielded():
                failed = remove_bench_tenant(settings, self.lxd, tenant.id)
                ramp.leftovers = failed + self._leftovers(ramp, tenant.project)

    def _raw_ramp(
        self, settings: Settings, spec: ScaleSpec, plan: Plan, env: dict[str, str], ramp: Ramp
    ) -> None:
        # Plain LXD at its best: one unrestricted project without limits (LXD skips its limit
        # checks there), the default project's images and profiles, the same instance config.
        project = project_name(f"{spec.run_id}-raw")  # `bench clean RUN` finds it too
        self.lxd.host.put_project(
            name=project,
            config={"features.images": "false", "features.profiles": "false"},
            description=f"containervps scale benchmark {spec.run_id}: raw LXD ramp",
        )
        try:
            baseline = DirectBaseline(
                settings, self.lxd, project=project, plan=plan, image=spec.image
            )
            path = RawPath(baseline, self.lxd, project)
            lxd_meter, log = self._meters(settings)
            loop: RampLoop[str] = RampLoop(
                ramp=ramp, spec=spec, create=path.create, lxd=lxd_meter, log=log, say=self.say
            )
            try:
                loop.run()
                ramp.reachable = path.reachable(loop.made, workers=spec.concurrency)
            finally:
                self._delete(ramp, lambda: path.delete_all(loop.made, workers=spec.concurrency))
        finally:
            with shielded():
                try:
                    clean_leftovers(settings, self.lxd, run_id=spec.run_id)  # and the project
                except ContainerVpsError as exc:
                    ramp.leftovers.append(f"project {project}: {exc.one_line()}")
                ramp.leftovers += self._leftovers(ramp, project)

    def _delete(self, ramp: Ramp, delete_all: Callable[[], int]) -> None:
        """Delete what the ramp made (Ctrl-C waits for it: nothing may be left)."""
        with shielded():
            self.say(f"{ramp.path}: deleting")
            t0 = time.perf_counter()
            ramp.deleted = delete_all()
            ramp.delete_s = time.perf_counter() - t0

    def _leftovers(self, ramp: Ramp, project: str) -> list[str]:
        loops = int(ramp.baseline.get("loop_devices", 0))
        now = host_figures(settle_s=0).loop_devices
        return leftovers(self.base_settings, self.lxd, project, loop_devices=loops, now_loops=now)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
