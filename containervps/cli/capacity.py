"""`containervps capacity`: how many more servers of each plan fit here, and why not more."""

from __future__ import annotations

from pathlib import Path

import typer

from containervps.bench.capacity_chart import write_capacity_report
from containervps.cli import common
from containervps.schemas.capacity import CapacityPublic
from containervps.services.capacity import planner
from containervps.services.capacity.advice import advise


def capacity(
    plan: str | None = typer.Option(None, "--plan", help="Only this plan."),
    advise_ratios: bool = typer.Option(
        False, "--advise", help="Propose memory and CPU overcommit ratios from measured use."
    ),
    html_dir: Path | None = typer.Option(
        None, "--html", help="Also write capacity.html and capacity.png into this directory."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Per plan: how many more servers fit and which resource binds first; every resource."""
    s = common.settings()
    report = planner.capacity_report(s, common.lxd(), plan=plan)
    advice = advise(s, per_server_mib=report.measured_mib_per_server) if advise_ratios else None
    if html_dir is not None:
        page = write_capacity_report(report, html_dir)
        common.err_console.print(f"wrote {page}")
    if json_out:
        common.print_json(CapacityPublic.of(report, advice).model_dump())
        return
    common.print_table(
        "more servers that fit",
        ["plan", "more", "binding resource"],
        [(p.plan, p.fits, p.binding or "-") for p in report.plans],
    )
    common.print_table(
        "resources",
        ["resource", "used", "sellable", "free", "admission", "basis"],
        [
            (r.name, r.used, r.sellable, r.free, "enforced" if r.enforced else "reported", r.basis)
            for r in report.resources
        ],
    )
    for a in advice or []:
        proposed = "-" if a.proposed is None else f"{a.proposed:g}"
        common.console.print(f"{a.setting}: now {a.current:g}, proposed {proposed} ({a.basis})")
