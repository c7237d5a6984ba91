"""Usage samples: every instance's counters read in one pass (host_counters.py), stored with
each counter's growth since the server's previous sample."""

from __future__ import annotations

import logging

from sqlalchemy import select as sa_select
from sqlalchemy import text
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server, UsageSample, utcnow
from containervps.lxd import Lxd
from containervps.services.metering.host_counters import Counters, counter_growth, read_counters
from containervps.services.metering.watch import watch
from containervps.services.servers.states import SAMPLED

log = logging.getLogger(__name__)

__all__ = ["counter_growth", "sample_all"]

# The newest sample of each live server, found through the (server_id, at) index.
LATEST = text(
    "SELECT u.* FROM usage_sample u WHERE u.id IN ("
    " SELECT (SELECT id FROM usage_sample x WHERE x.server_id = s.id ORDER BY x.at DESC LIMIT 1)"
    " FROM server s WHERE s.deleted_at IS NULL)"
)


def _latest(session: Session) -> dict[int, UsageSample]:
    rows = session.execute(sa_select(UsageSample).from_statement(LATEST)).scalars().all()
    return {row.server_id: row for row in rows}


def _sample(server: Server, counters: Counters, before: UsageSample | None) -> UsageSample:
    assert server.id is not None
    row = UsageSample(
        server_id=server.id,
        tenant_id=server.tenant_id,
        cpu_seconds=counters.cpu_seconds,
        memory_bytes=counters.memory_bytes,
        disk_bytes=counters.disk_bytes,
        net_rx_bytes=counters.rx_bytes,
        net_tx_bytes=counters.tx_bytes,
    )
    if before is not None:
        row.cpu_delta = counter_growth(before.cpu_seconds, row.cpu_seconds)
        row.rx_delta = int(counter_growth(before.net_rx_bytes, row.net_rx_bytes))
        row.tx_delta = int(counter_growth(before.net_tx_bytes, row.net_tx_bytes))
    return row


def sample_all(settings: Settings, lxd: Lxd) -> int:
    """Read every live server's counters from the host in one pass and store one sample each,
    then let the kernel watch compare them with its last check (OOM kills, unexpected stops);
    return the count (instances LXD does not have are left to the reconciler)."""
    seen_at = utcnow()  # before LXD is asked: an action started after it may explain a stop
    states = read_counters(settings, lxd)
    with session_scope(settings) as session:
        servers = session.exec(
            select(Server).where(col(Server.deleted_at).is_(None), col(Server.status).in_(SAMPLED))
        ).all()
        latest = _latest(session)
    rows = [
        _sample(server, state, latest.get(server.id or 0))
        for server in servers
        if (state := states.get((server.lxd_project, server.lxd_name))) is not None
    ]
    with session_scope(settings, immediate=True) as session:
        session.add_all(rows)
    watched = watch(settings, servers=servers, states=states, seen_at=seen_at)
    if watched.oom_events or watched.stops:
        log.info("kernel watch", extra={"oom": watched.oom_events, "stopped": watched.stops})
    return len(rows)
