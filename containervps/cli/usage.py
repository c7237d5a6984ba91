"""`containervps usage ...`: sample now, and the monthly usage report."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import typer

from containervps.cli import common, hits_table
from containervps.services.metering import limit_hits, rollups, usage
from containervps.services.tenancy import tenants

app = typer.Typer(
    help="Usage accounting: CPU, memory, disk, network, transfer.", no_args_is_help=True
)


@app.command("sample")
def sample() -> None:
    """Take one usage sample of every server now and check transfer allowances (`serve` does
    it every interval)."""
    s = common.settings()
    started = time.perf_counter()
    count, crossings = usage.sample_pass(s, common.lxd())
    common.console.print(f"sampled {count} servers in {time.perf_counter() - started:.2f} s")
    for c in crossings:
        common.console.print(
            f"server {c.server_id}: {c.type} ({c.used_bytes} of {c.allowance_bytes} bytes)"
        )


@app.command("compact")
def compact(json_out: bool = common.JsonOption) -> None:
    """Roll old samples up into hours and old hours into months (`serve` does it each pass)."""
    done = rollups.compact(common.settings())
    if json_out:
        common.print_json(done)
        return
    common.console.print(
        f"rolled {done.samples_rolled} samples into hours, {done.hours_rolled} hours into "
        f"months; pruned {done.events_pruned} old server events"
    )


@app.command("report")
def report(
    month: str | None = typer.Option(None, help="YYYY-MM (default: this month)."),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Tenant id or name."),
    hits: bool = typer.Option(
        False, "--hits", help="Also the limits each server hit since it started, read now."
    ),
    json_out: bool = common.JsonOption,
) -> None:
    """Per server: CPU seconds, network bytes and outbound transfer vs the plan's allowance;
    with --hits, the kernel's counters of enforcing each server's slice (read in one pass)."""
    s = common.settings()
    month = month or datetime.now(UTC).strftime("%Y-%m")
    tenant_id = tenants.resolve(s, tenant) if tenant else None
    months = usage.monthly_usage(s, tenant_id=tenant_id, month=month)
    rows = [
        {**usage.report_row(server, totals), "tenant_id": server.tenant_id}
        for server, totals in months
    ]
    read = limit_hits.all_hits(s, common.lxd(), [m[0] for m in months]) if hits else {}
    if json_out:
        for r in rows:
            if r["server"]["id"] in read:
                r["limit_hits"] = read[r["server"]["id"]].model_dump()
        common.print_json({"month": month, "servers": rows})
        return
    common.print_table(
        f"usage {month}",
        ["server", "tenant", "plan", "cpu s", "rx bytes", "tx bytes", "allowance", "exceeded"],
        [
            (
                f"{r['server']['id']} {r['server']['name']}",
                r["tenant_id"],
                r["server"]["plan"],
                r["cpu_seconds"],
                r["net_rx_bytes"],
                r["net_tx_bytes"],
                r["transfer"]["allowance_bytes"],
                r["transfer"]["exceeded"],
            )
            for r in rows
        ],
    )
    if hits:
        common.print_table(
            "limit hits since each server started",
            ["server", *hits_table.COLUMNS],
            [
                (f"{srv.id} {srv.name}", *hits_table.row(read[srv.id]))
                for srv, _ in months
                if srv.id in read
            ],
        )
