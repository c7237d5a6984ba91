"""Usage accounting: samples of each server's counters, metrics over a window, monthly usage."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server, UsageSample
from containervps.errors import ContainerVpsError, InvalidInput, LxdNotFound
from containervps.lxd import Lxd
from containervps.services.servers.queries import get_server
from containervps.services.servers.states import SAMPLED

log = logging.getLogger(__name__)

__all__ = [
    "Totals",
    "metrics",
    "month_bounds",
    "monthly_usage",
    "report_row",
    "sample_all",
]

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Totals:
    """Counter growth over a window (restarts that reset counters are accounted for)."""

    cpu_seconds: float
    net_rx_bytes: int
    net_tx_bytes: int
    samples: int


def sample_all(settings: Settings, lxd: Lxd) -> int:
    """Read every live server's counters from LXD and store one sample each; return the count."""
    with session_scope(settings) as session:
        servers = session.exec(
            select(Server).where(col(Server.deleted_at).is_(None), col(Server.status).in_(SAMPLED))
        ).all()
    rows = []
    for server in servers:
        assert server.id is not None
        try:
            state = lxd.instances.state(name=server.lxd_name, project=server.lxd_project)
        except LxdNotFound:
            continue  # the reconciler deals with vanished instances
        except ContainerVpsError as exc:
            log.warning("usage sample failed", extra={"server": server.id, "error": str(exc)})
            continue
        rows.append(
            UsageSample(
                server_id=server.id,
                tenant_id=server.tenant_id,
                cpu_seconds=state.cpu_usage_ns / 1e9,
                memory_bytes=state.memory_usage_bytes,
                disk_bytes=state.disk_usage_bytes,
                net_rx_bytes=state.net_rx_bytes,
                net_tx_bytes=state.net_tx_bytes,
            )
        )
    with session_scope(settings, immediate=True) as session:
        session.add_all(rows)
    return len(rows)


def _growth(values: list[float]) -> float:
    """Sum of increases of a cumulative counter; a drop means it restarted from zero."""
    total = 0.0
    for before, after in pairwise(values):
        total += after - before if after >= before else after
    return total


def _totals(samples: list[UsageSample]) -> Totals:
    return Totals(
        cpu_seconds=round(_growth([s.cpu_seconds for s in samples]), 3),
        net_rx_bytes=int(_growth([float(s.net_rx_bytes) for s in samples])),
        net_tx_bytes=int(_growth([float(s.net_tx_bytes) for s in samples])),
        samples=len(samples),
    )


def _samples(
    settings: Settings, *, server_id: int, start: datetime, end: datetime, baseline: bool
) -> list[UsageSample]:
    with session_scope(settings) as session:
        base = select(UsageSample).where(UsageSample.server_id == server_id)
        rows = list(
            session.exec(
                base.where(col(UsageSample.at) >= start, col(UsageSample.at) < end).order_by(
                    col(UsageSample.at)
                )
            ).all()
        )
        if baseline:  # the last sample before the window: growth across its start counts
            before = session.exec(
                base.where(col(UsageSample.at) < start).order_by(col(UsageSample.at).desc())
            ).first()
            if before is not None:
                rows.insert(0, before)
        return rows


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def metrics(
    settings: Settings, *, server_id: int, tenant_id: int | None, start: datetime, end: datetime
) -> tuple[list[UsageSample], Totals]:
    """A server's samples in [start, end) (at most metrics_max_samples, evenly thinned)."""
    start, end = _aware(start), _aware(end)
    if start >= end:
        raise InvalidInput("start must be before end", details={"field": "start"})
    get_server(settings, server_id=server_id, tenant_id=tenant_id)
    rows = _samples(settings, server_id=server_id, start=start, end=end, baseline=False)
    totals = _totals(rows)
    limit = settings.metrics_max_samples
    if len(rows) > limit:
        step = -(-len(rows) // limit)
        rows = rows[::step]
    return rows, totals


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) of 'YYYY-MM', in UTC."""
    match = MONTH.match(month)
    if not match:
        raise InvalidInput(f"month must be YYYY-MM, got {month!r}", details={"field": "month"})
    year, number = int(match[1]), int(match[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def monthly_usage(
    settings: Settings, *, tenant_id: int | None, month: str
) -> list[tuple[Server, Totals]]:
    """Per server of the tenant (all tenants when None): usage in the month."""
    start, end = month_bounds(month)
    with session_scope(settings) as session:
        ids = select(UsageSample.server_id).where(
            col(UsageSample.at) >= start, col(UsageSample.at) < end
        )
        if tenant_id is not None:
            ids = ids.where(UsageSample.tenant_id == tenant_id)
        servers = session.exec(
            select(Server).where(col(Server.id).in_(ids.distinct())).order_by(col(Server.id))
        ).all()
    out = []
    for server in servers:
        assert server.id is not None
        rows = _samples(settings, server_id=server.id, start=start, end=end, baseline=True)
        out.append((server, _totals(rows)))
    return out


def report_row(server: Server, totals: Totals) -> dict[str, Any]:
    """One server's month: counters' growth and outbound transfer against its plan."""
    allowance = int(server.limits.get("transfer", {}).get("value", 0)) * 2**30
    return {
        "server": {"id": server.id, "name": server.name, "plan": server.plan},
        "cpu_seconds": totals.cpu_seconds,
        "net_rx_bytes": totals.net_rx_bytes,
        "net_tx_bytes": totals.net_tx_bytes,
        "transfer": {
            "counted": "outbound",
            "used_bytes": totals.net_tx_bytes,
            "allowance_bytes": allowance,
            "exceeded": totals.net_tx_bytes > allowance,
        },
    }
