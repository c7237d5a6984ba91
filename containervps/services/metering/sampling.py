"""Usage samples: every instance's counters read in one pass (host_counters.py), stored with
each counter's growth since the server's previous sample."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select as sa_select
from sqlalchemy import text
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server, UsageSample, utcnow
from containervps.errors import ContainerVpsError
from containervps.lxd import Lxd
from containervps.services.metering.host_counters import (
    Counters,
    counter_growth,
    read_counters,
    read_one,
)
from containervps.services.metering.watch import watch
from containervps.services.servers.states import SAMPLED

log = logging.getLogger(__name__)

__all__ = ["counter_growth", "sample_all", "sample_server"]

# The newest sample of each live server, found through the (server_id, at) index.
LATEST = text(
    "SELECT u.* FROM usage_sample u WHERE u.id IN ("
    " SELECT (SELECT id FROM usage_sample x WHERE x.server_id = s.id ORDER BY x.at DESC LIMIT 1)"
    " FROM server s WHERE s.deleted_at IS NULL)"
)


def _latest(session: Session) -> dict[int, UsageSample]:
    rows = session.execute(sa_select(UsageSample).from_statement(LATEST)).scalars().all()
    return {row.server_id: row for row in rows}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _sample(
    server: Server, counters: Counters, before: UsageSample | None, *, at: datetime
) -> UsageSample:
    assert server.id is not None
    row = UsageSample(
        server_id=server.id,
        tenant_id=server.tenant_id,
        at=at,
        cpu_seconds=counters.cpu_seconds,
        memory_bytes=counters.memory_bytes,
        disk_bytes=counters.disk_bytes,
        net_rx_bytes=counters.rx_bytes,
        net_tx_bytes=counters.tx_bytes,
    )
    # A server's first sample counts everything since its NIC came up (after it was made):
    # traffic before the first sample is the server's too.
    row.cpu_delta = counter_growth(before.cpu_seconds if before else 0.0, row.cpu_seconds)
    row.rx_delta = int(counter_growth(before.net_rx_bytes if before else 0, row.net_rx_bytes))
    row.tx_delta = int(counter_growth(before.net_tx_bytes if before else 0, row.net_tx_bytes))
    return row


def _store(settings: Settings, readings: list[tuple[Server, Counters]], *, at: datetime) -> int:
    """Store readings taken at ``at`` with their growth since each server's newest sample.

    The newest sample is read in the same write transaction, and a server sampled later than
    ``at`` meanwhile (a boundary sample racing the periodic pass) keeps that one: growth is
    never counted twice nor taken against a later reading.
    """
    with session_scope(settings, immediate=True) as session:
        latest = _latest(session)
        rows = []
        for server, counters in readings:
            before = latest.get(server.id or 0)
            if before is not None and _aware(before.at) >= at:
                continue
            rows.append(_sample(server, counters, before, at=at))
        session.add_all(rows)
    return len(rows)


def sample_all(settings: Settings, lxd: Lxd) -> int:
    """Read every live server's counters from the host in one pass and store one sample each,
    then let the kernel watch compare them with its last check (OOM kills, unexpected stops);
    return the count (instances LXD does not have are left to the reconciler)."""
    at = utcnow()  # before LXD is asked: an action started after it may explain a stop
    states = read_counters(settings, lxd)
    with session_scope(settings) as session:
        servers = session.exec(
            select(Server).where(col(Server.deleted_at).is_(None), col(Server.status).in_(SAMPLED))
        ).all()
    readings = [
        (server, state)
        for server in servers
        if (state := states.get((server.lxd_project, server.lxd_name))) is not None
    ]
    stored = _store(settings, readings, at=at)
    watched = watch(settings, servers=servers, states=states, seen_at=at)
    if watched.oom_events or watched.stops:
        log.info("kernel watch", extra={"oom": watched.oom_events, "stopped": watched.stops})
    return stored


def sample_server(settings: Settings, lxd: Lxd, server: Server) -> bool:
    """A boundary sample of one server (before its NIC goes away, right after it comes up),
    whatever its status; False when LXD has no such instance or it could not be read."""
    at = utcnow()
    try:
        counters = read_one(settings, lxd, project=server.lxd_project, name=server.lxd_name)
    except ContainerVpsError as exc:
        log.warning("boundary sample failed", extra={"server": server.id, "error": str(exc)})
        return False
    if counters is None:
        return False
    return _store(settings, [(server, counters)], at=at) == 1
