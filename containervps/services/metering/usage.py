"""Usage accounting: metrics over a window (raw samples), usage per month (all tiers)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server, UsageRollup, UsageSample
from containervps.errors import InvalidInput
from containervps.lxd import Lxd
from containervps.schemas.bounds import check_month
from containervps.services.metering import allowance
from containervps.services.metering.sampling import counter_growth, sample_all
from containervps.services.servers.queries import get_server

log = logging.getLogger(__name__)

__all__ = [
    "Totals",
    "metrics",
    "month_bounds",
    "monthly_usage",
    "report_row",
    "sample_all",
    "sample_pass",
]


@dataclass(frozen=True)
class Totals:
    """Counter growth over a window (restarts that reset counters are accounted for)."""

    cpu_seconds: float
    net_rx_bytes: int
    net_tx_bytes: int
    samples: int


def _growth(values: list[float]) -> float:
    """Sum of increases of a cumulative counter; a drop means it restarted from zero."""
    return sum(counter_growth(before, after) for before, after in pairwise(values))


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
    try:
        check_month(month)  # the API's bound too: the month's end is still a datetime
    except ValueError as exc:
        raise InvalidInput(f"month {month!r}: {exc}", details={"field": "month"}) from exc
    year, number = int(month[:4]), int(month[5:])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def sample_pass(settings: Settings, lxd: Lxd) -> tuple[int, list[allowance.Crossing]]:
    """One usage sample of every server, then the transfer allowances checked on it."""
    count = sample_all(settings, lxd)
    return count, allowance.check_allowances(settings, lxd)


def monthly_usage(
    settings: Settings, *, tenant_id: int | None, month: str
) -> list[tuple[Server, Totals]]:
    """Per server of the tenant (all tenants when None): usage in the month, from the growth
    each sample recorded and from the roll-ups of older samples (one query each)."""
    start, end = month_bounds(month)
    raw = sa_select(
        col(UsageSample.server_id),
        func.sum(UsageSample.cpu_delta),
        func.sum(UsageSample.rx_delta),
        func.sum(UsageSample.tx_delta),
        func.count(),
    ).where(col(UsageSample.at) >= start, col(UsageSample.at) < end)
    rolled = sa_select(
        col(UsageRollup.server_id),
        func.sum(UsageRollup.cpu_seconds),
        func.sum(UsageRollup.net_rx_bytes),
        func.sum(UsageRollup.net_tx_bytes),
        func.sum(UsageRollup.samples),
    ).where(col(UsageRollup.start) >= start, col(UsageRollup.start) < end)
    if tenant_id is not None:
        raw = raw.where(col(UsageSample.tenant_id) == tenant_id)
        rolled = rolled.where(col(UsageRollup.tenant_id) == tenant_id)
    sums: dict[int, list[float]] = {}
    with session_scope(settings) as session:
        for query, key in ((raw, UsageSample.server_id), (rolled, UsageRollup.server_id)):
            for server_id, *values in session.execute(query.group_by(col(key))).all():
                into = sums.setdefault(server_id, [0.0, 0.0, 0.0, 0.0])
                for k, value in enumerate(values):
                    into[k] += float(value or 0)
        servers = session.exec(
            select(Server).where(col(Server.id).in_(list(sums))).order_by(col(Server.id))
        ).all()
    return [(server, _summed(sums[server.id or 0])) for server in servers]


def _summed(values: list[float]) -> Totals:
    cpu, rx, tx, count = values
    return Totals(
        cpu_seconds=round(cpu, 3), net_rx_bytes=int(rx), net_tx_bytes=int(tx), samples=int(count)
    )


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
