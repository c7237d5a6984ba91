"""`containervps bench scale`: servers ramped through the API beside raw LXD (registered in
bench.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from containervps.bench.scale.model import ScaleSpec
from containervps.cli import common


def scale(
    target: int = typer.Option(20, help="Servers per ramp."),
    batch: int = typer.Option(10, help="Creates between two measurements."),
    concurrency: int = typer.Option(8, help="Creates in flight at once."),
    image: str = typer.Option("busybox", help="busybox (idle) or debian-12 (systemd + sshd)."),
    plan: str = typer.Option("nano"),
    disk_layout: str | None = typer.Option(
        None, help="shared or per_server (default: the platform's setting)."
    ),
    baseline: bool = typer.Option(True, help="Also ramp through raw LXD (pylxd)."),
    check_ssh: bool = typer.Option(False, help="At the top, every server's sshd must answer."),
    max_failures: int = typer.Option(5, help="Stop a ramp after this many failed creates."),
    min_free_mib: int = typer.Option(2048, help="Stop before MemAvailable falls below this."),
    max_minutes: float = typer.Option(60.0, help="Time budget of each ramp."),
    list_samples: int = typer.Option(50, help="List and show requests timed per step."),
    until_full: bool = typer.Option(
        False,
        "--until-full",
        help="Keep the operator's overcommit ratios and ramp until admission refuses; "
        "the report sets the count beside `containervps capacity`'s prediction.",
    ),
    output: Path | None = typer.Option(None, "--output", "-o", help="Report directory."),
    json_out: bool = common.JsonOption,
) -> None:
    """Ramp real servers through the tenant API, then raw LXD, measuring the host at each step;
    everything is deleted again, also after Ctrl-C."""
    from containervps.bench.scale.runner import ScaleBenchmark
    from containervps.bench.service import new_run_id
    from containervps.cli.bench import print_outcome

    s = common.settings()
    spec = ScaleSpec(
        run_id=new_run_id(),
        target=target,
        batch=batch,
        concurrency=concurrency,
        image=image,
        plan=plan,
        disk_layout=disk_layout or s.disk_layout,
        baseline=baseline,
        check_ssh=check_ssh,
        max_failures=max_failures,
        min_free_mib=min_free_mib,
        budget_s=max_minutes * 60,
        list_samples=list_samples,
        until_full=until_full,
        output_dir=str(output) if output else "",
    )

    def say(message: str) -> None:
        if not json_out:
            common.err_console.print(f"bench scale: {message}", highlight=False)

    run, paths = ScaleBenchmark(s, common.lxd(), say=say).run(spec)
    print_outcome(spec.run_id, run.status, run.error, paths, json_out=json_out)
    if run.status != "success":
        raise typer.Exit(1)
