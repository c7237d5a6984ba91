"""`containervps bench api`: control-plane overhead and list latency (registered in bench.py)."""

from __future__ import annotations

import typer

from containervps.bench.api_bench import ApiBenchResult, run_api_bench
from containervps.cli import common


def api(
    creates: int = typer.Option(10, help="Sequential creates each way."),
    concurrent: int = typer.Option(10, help="Concurrent creates each way."),
    list_rows: int = typer.Option(1000, help="Server rows in the database for the list test."),
    list_samples: int = typer.Option(300, help="GET /v1/servers requests to time."),
    image: str = typer.Option("busybox"),
    plan: str = typer.Option("nano"),
    json_out: bool = common.JsonOption,
) -> None:
    """API create-to-running vs direct pylxd (p50/p95), concurrent creates, list latency."""
    with common.console.status("bench api: starting") as status:
        result = run_api_bench(
            common.settings(),
            common.lxd(),
            creates=creates,
            concurrent=concurrent,
            list_rows=list_rows,
            list_samples=list_samples,
            image=image,
            plan=plan,
            say=lambda message: status.update(f"bench api: {message}"),
        )
    if json_out:
        common.print_json(
            {
                **common.to_jsonable(result),
                "p50_ratio": result.p50_ratio,
                "p95_ratio": result.p95_ratio,
                "concurrent_ratio": result.concurrent_ratio,
            }
        )
        return
    _print_table(result)


def _print_table(r: ApiBenchResult) -> None:
    common.print_table(
        f"bench api ({r.image}, plan {r.plan})",
        ["measurement", "API", "direct pylxd", "ratio", "target"],
        [
            (
                "create-to-running p50",
                f"{r.api_p50_s:.3f} s",
                f"{r.direct_p50_s:.3f} s",
                f"{r.p50_ratio:.2f}x",
                "<= 1.2x",
            ),
            (
                "create-to-running p95",
                f"{r.api_p95_s:.3f} s",
                f"{r.direct_p95_s:.3f} s",
                f"{r.p95_ratio:.2f}x",
                "",
            ),
            (
                f"{r.concurrent} concurrent creates, total",
                f"{r.api_concurrent_total_s:.2f} s",
                f"{r.direct_concurrent_total_s:.2f} s",
                f"{r.concurrent_ratio:.2f}x",
                "",
            ),
            (f"GET /v1/servers, {r.list_rows} rows, p50", f"{r.list_p50_ms:.1f} ms", "", "", ""),
            (f"GET /v1/servers, {r.list_rows} rows, p95", f"{r.list_p95_ms:.1f} ms", "", "", ""),
            (
                f"GET /v1/servers, {r.list_rows} rows, p99",
                f"{r.list_p99_ms:.1f} ms",
                "",
                "",
                "< 50 ms",
            ),
        ],
    )
    common.console.print(f"{r.creates} sequential creates each way; {r.list_samples} list requests")
