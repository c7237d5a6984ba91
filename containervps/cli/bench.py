"""`containervps bench ...`: density benchmark runs and their reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from containervps.bench import store
from containervps.bench.model import KINDS, DensitySpec
from containervps.bench.report import load_raw, write_reports
from containervps.bench.steps import parse_steps
from containervps.cli import bench_api, bench_scale, common

app = typer.Typer(help="Benchmarks.", no_args_is_help=True)


class ProgressEvents:
    """Draws one rich progress bar per kind from the benchmark's events."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.current = "all"

    def phase(self, kind: str, message: str, *, total: int | None = None) -> None:
        if kind not in self.tasks:
            self.tasks[kind] = self.progress.add_task(kind, total=total)
        self.current = kind
        task = self.tasks[kind]
        self.progress.update(task, description=f"{kind}: {message}")
        if total is not None:
            self.progress.update(task, total=total)

    def advance(self, amount: int = 1) -> None:
        if self.current in self.tasks:
            self.progress.advance(self.tasks[self.current], amount)


@app.command("density")
def density(
    kind: list[str] = typer.Option(list(KINDS), "--kind", "-k", help="lxd, docker, vm."),
    workload: str = typer.Option("busybox", help="busybox (idle) or debian-12 (systemd+sshd)."),
    active: bool = typer.Option(False, "--active", help="Run a small CPU+memory load inside."),
    steps: list[str] = typer.Option(
        ["1,5,10"], "--steps", help="Counts to sample at: 10,25,50 or per kind vm=1,2,4."
    ),
    ramp: bool = typer.Option(False, "--ramp", help="Grow until a stop condition instead."),
    batch: int = typer.Option(10, help="Ramp: instances added per batch."),
    max_instances: int = typer.Option(500, help="Ramp: never more than this many."),
    memory_mib: int | None = typer.Option(None, "--memory", help="Guest memory MiB."),
    vcpus: int | None = typer.Option(None, help="vCPUs per instance."),
    concurrency: int | None = typer.Option(None, help="Instances started at once."),
    headroom: float = typer.Option(0.10, help="Share of host memory kept free."),
    accel: str = typer.Option("auto", help="VM accelerator: auto, kvm or tcg."),
    tcg_tb_mib: int | None = typer.Option(
        None, help="Cap QEMU's TCG translation cache (MiB; QEMU's default is 1 GiB)."
    ),
    boot_timeout: float | None = typer.Option(None, help="Seconds for one instance to be ready."),
    settle_seconds: float | None = typer.Option(None, help="Max seconds to let memory settle."),
    drop_caches: bool = typer.Option(True, help="Also sample after dropping the page cache."),
    cpu_loops: int = typer.Option(200_000, help="Iterations of the CPU overhead job."),
    iops_writes: int = typer.Option(1000, help="4 KiB direct writes of the IOPS job."),
    max_minutes: float = typer.Option(120.0, help="Time budget of the whole run."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Report directory."),
    json_out: bool = common.JsonOption,
) -> None:
    """Measure instances per host: LXD system containers vs QEMU VMs vs Docker containers."""
    from containervps.bench.service import DensityBenchmark, new_run_id

    s = common.settings()
    spec = DensitySpec(
        run_id=new_run_id(),
        kinds=list(dict.fromkeys(kind)),
        workload=workload,
        active=active,
        steps=parse_steps(steps),
        ramp=ramp,
        batch=batch,
        max_instances=max_instances,
        memory_mib=memory_mib or s.bench_guest_memory_mib,
        vcpus=vcpus or s.bench_guest_vcpus,
        concurrency=concurrency or s.bench_concurrency,
        headroom=headroom,
        accel=accel,
        tcg_tb_mib=tcg_tb_mib,
        boot_timeout=boot_timeout or s.bench_boot_timeout,
        settle_seconds=settle_seconds if settle_seconds is not None else s.bench_settle_seconds,
        drop_caches=drop_caches,
        cpu_loops=cpu_loops,
        iops_writes=iops_writes,
        max_minutes=max_minutes,
        output_dir=str(output) if output else "",
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=common.err_console, disable=json_out) as progress:
        run, paths = DensityBenchmark(s, common.lxd(), events=ProgressEvents(progress)).run(spec)
    print_outcome(run.spec.run_id, run.status, run.error, paths, json_out=json_out)
    if run.status != "success":
        raise typer.Exit(1)


def print_outcome(
    run_id: str, status: str, error: str | None, paths: dict[str, Path], *, json_out: bool
) -> None:
    if json_out:
        common.print_json({"run_id": run_id, "status": status, "error": error, "files": paths})
        return
    common.console.print((paths["markdown"]).read_text(), markup=False, highlight=False)
    for name, path in paths.items():
        common.console.print(f"{name}: {path}", highlight=False)
    if error:
        common.err_console.print(f"[red]error:[/red] {error}", highlight=False)


@app.command("list")
def list_runs(json_out: bool = common.JsonOption) -> None:
    """Past benchmark runs, newest first."""
    runs = store.list_runs(common.settings())
    if json_out:
        common.print_json([r.model_dump() for r in runs])
        return
    common.print_table(
        "benchmark runs",
        ["id", "kind", "status", "workload", "paths", "max N", "MiB/instance", "ratio", "started"],
        [
            (
                r.id,
                r.kind,
                r.status,
                r.workload,
                r.kinds,
                *_headline(r.kind, r.summary),
                r.started_at.isoformat(timespec="seconds"),
            )
            for r in runs
        ],
    )


def _headline(kind: str, summary: dict[str, Any]) -> tuple[str, str, str]:
    """max N, MiB per instance and the headline ratio of a run, per path or kind."""
    if kind == "scale":
        ramps = summary.get("ramps") or {}
        max_n = {p: f["n"] for p, f in ramps.items()}
        mib = {p: f["mib_per_server"] for p, f in ramps.items()}
        ratio, name = summary.get("api_vs_raw_p50"), "API/raw p50"
    else:
        max_n, mib = summary.get("max_n") or {}, summary.get("mib_per_instance") or {}
        ratio, name = summary.get("vm_vs_lxd"), "VM/LXD"
    return (
        " ".join(f"{k}={v}" for k, v in max_n.items()),
        " ".join(f"{k}={v:.1f}" for k, v in mib.items() if v is not None),
        f"{name} {ratio:.2f}x" if ratio else "-",
    )


@app.command("show")
def show(run_id: str = typer.Argument(..., help="Run id (a unique prefix works).")) -> None:
    """The summary of one run (its Markdown report)."""
    row = store.get_run(common.settings(), run_id)
    summary = Path(row.report_dir) / "summary.md"
    if summary.exists():
        common.console.print(summary.read_text(), markup=False, highlight=False)
    else:
        common.print_json(row.model_dump())
    common.console.print(f"reports: {row.report_dir}", highlight=False)


@app.command("report")
def report(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix works)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here instead."),
) -> None:
    """Re-render a past run's Markdown, HTML and charts from its raw JSON."""
    from containervps.bench.scale import report as scale_report

    row = store.get_run(common.settings(), run_id)
    raw = load_raw(Path(row.report_dir))
    render = scale_report.write_reports if row.kind == "scale" else write_reports
    paths = render(raw, output or Path(row.report_dir))
    for name, path in paths.items():
        common.console.print(f"{name}: {path}", highlight=False)


app.command("api")(bench_api.api)
app.command("scale")(bench_scale.scale)


@app.command("clean")
def clean(
    run_id: str | None = typer.Argument(None, help="Only this run (default: every bench run)."),
) -> None:
    """Remove what interrupted or killed runs left: LXD projects, Docker containers, QEMU VMs,
    benchmark tenants."""
    from containervps.bench.service import clean_leftovers

    removed = clean_leftovers(common.settings(), common.lxd(), run_id=run_id)
    common.console.print(f"removed {len(removed)} leftovers", highlight=False)
    for item in removed:
        common.console.print(f"  {item}", highlight=False)
