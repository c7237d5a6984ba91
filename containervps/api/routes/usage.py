"""Usage for tenants: a server's metrics over a window, and the month's usage vs allowances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter

from containervps.api.deps import LxdDep, SettingsDep, TenantDep
from containervps.schemas.bounds import Id, Instant, Month
from containervps.schemas.responses import LimitHitsEnvelope, MetricsEnvelope, UsageEnvelope
from containervps.services.metering import limit_hits, usage
from containervps.services.servers import queries

router = APIRouter(prefix="/v1", tags=["usage"])

DEFAULT_WINDOW = timedelta(hours=1)


def _ts(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.isoformat().replace("+00:00", "Z")


@router.get("/servers/{server_id}/metrics", response_model=MetricsEnvelope)
def server_metrics(
    server_id: Id,
    ident: TenantDep,
    settings: SettingsDep,
    start: Instant | None = None,
    end: Instant | None = None,
) -> dict[str, Any]:
    """Samples of CPU seconds, memory, disk and network counters in [start, end)."""
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_WINDOW
    rows, totals = usage.metrics(
        settings, server_id=server_id, tenant_id=ident.tenant_id, start=start, end=end
    )
    return {
        "metrics": {
            "start": _ts(start),
            "end": _ts(end),
            "samples": [
                {
                    "at": _ts(r.at),
                    "cpu_seconds": r.cpu_seconds,
                    "memory_bytes": r.memory_bytes,
                    "disk_bytes": r.disk_bytes,
                    "net_rx_bytes": r.net_rx_bytes,
                    "net_tx_bytes": r.net_tx_bytes,
                }
                for r in rows
            ],
            "totals": vars(totals),
        }
    }


@router.get("/servers/{server_id}/limits/hits", response_model=LimitHitsEnvelope)
def server_limit_hits(
    server_id: Id, ident: TenantDep, settings: SettingsDep, lxd: LxdDep
) -> dict[str, Any]:
    """The kernel's counters of enforcing the server's slice since it last started: memory
    limit hits and OOM kills, refused forks, CPU throttling and waits, disk I/O against its
    limits, shaping drops, and pressure stall (PSI)."""
    server = queries.get_server(settings, server_id=server_id, tenant_id=ident.tenant_id)
    return {"limit_hits": limit_hits.server_hits(settings, lxd, server).model_dump()}


@router.get("/usage", response_model=UsageEnvelope)
def monthly_usage(
    ident: TenantDep, settings: SettingsDep, month: Month | None = None
) -> dict[str, Any]:
    """The caller's usage in a month (YYYY-MM, default: this month), per server and in total."""
    month = month or datetime.now(UTC).strftime("%Y-%m")
    per_server = [
        usage.report_row(server, totals)
        for server, totals in usage.monthly_usage(settings, tenant_id=ident.tenant_id, month=month)
    ]
    keys = ("cpu_seconds", "net_rx_bytes", "net_tx_bytes")
    total = {k: sum(s[k] for s in per_server) for k in keys}
    return {"usage": {"month": month, "servers": per_server, "totals": total}}
