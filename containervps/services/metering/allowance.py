"""The monthly transfer allowance acted on: events at 80% and 100% (and the operator's
webhook), then egress throttled until the month turns or the operator lifts it.

A server's standing in the month is folded from its events of the month, so the state the
platform acts on is the one its tenant reads (``GET /v1/events``): no second record to drift.
An operator's reset starts the count again from that moment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Event, Server, UsageRollup, UsageSample, utcnow
from containervps.errors import ContainerVpsError
from containervps.lxd import Lxd
from containervps.services.events import EventType, record_in
from containervps.services.events.webhook import post_event
from containervps.services.servers import egress
from containervps.services.servers.queries import live_server

log = logging.getLogger(__name__)

__all__ = ["Standing", "check_allowances", "is_throttled", "standings", "unthrottle"]

LEVELS = ((80, EventType.TRANSFER_80), (100, EventType.TRANSFER_EXCEEDED))
KINDS = [t.value for t in (*(t for _, t in LEVELS), EventType.TRANSFER_THROTTLED)] + [
    EventType.TRANSFER_UNTHROTTLED.value
]


@dataclass
class Standing:
    """A server's allowance in the month, as its events tell it."""

    counted_from: datetime  # the month's start, or the operator's last reset
    notified: set[int] = field(default_factory=set)  # levels (80, 100) already told
    throttled: bool = False
    lifted: bool = False  # the operator lifted the throttle for the rest of the month


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def standings(
    settings: Settings, *, server_ids: list[int] | None = None, now: datetime | None = None
) -> dict[int, Standing]:
    """Each server's standing this month (servers with no allowance event are absent)."""
    start = month_start(now or utcnow())
    query = select(Event).where(col(Event.type).in_(KINDS), col(Event.at) >= start)
    if server_ids is not None:
        query = query.where(col(Event.server_id).in_(server_ids))
    with session_scope(settings) as session:
        events = session.exec(query.order_by(col(Event.id))).all()
    result: dict[int, Standing] = {}
    for event in events:
        if event.server_id is None:
            continue
        st = result.setdefault(event.server_id, Standing(counted_from=start))
        if event.type == EventType.TRANSFER_UNTHROTTLED:
            if event.details.get("reset"):
                result[event.server_id] = Standing(counted_from=_aware(event.at))
            else:
                st.throttled, st.lifted = False, True
        elif event.type == EventType.TRANSFER_THROTTLED:
            st.throttled = True
        else:
            st.notified.update(level for level, kind in LEVELS if kind == event.type)
    return result


def is_throttled(settings: Settings, server_id: int) -> bool:
    """Whether the server's egress is held to the throttle rate now."""
    st = standings(settings, server_ids=[server_id]).get(server_id)
    return bool(st and st.throttled)


def _sent_since(session: Session, since: datetime, server_ids: list[int]) -> dict[int, int]:
    """Bytes each server sent from ``since`` on (samples' growth and roll-ups after it)."""
    raw = (
        sa_select(col(UsageSample.server_id), func.sum(UsageSample.tx_delta))
        .where(col(UsageSample.at) >= since, col(UsageSample.server_id).in_(server_ids))
        .group_by(col(UsageSample.server_id))
    )
    rolled = (
        sa_select(col(UsageRollup.server_id), func.sum(UsageRollup.net_tx_bytes))
        .where(col(UsageRollup.start) >= since, col(UsageRollup.server_id).in_(server_ids))
        .group_by(col(UsageRollup.server_id))
    )
    sent: dict[int, int] = {}
    for query in (raw, rolled):
        for server_id, total in session.execute(query).all():
            sent[server_id] = sent.get(server_id, 0) + int(total or 0)
    return sent


def _allowance(server: Server) -> int:
    return int(server.limits.get("transfer", {}).get("value", 0)) * 2**30


@dataclass(frozen=True)
class Crossing:
    """An allowance event the pass recorded (and the rate then held)."""

    server_id: int
    type: str
    used_bytes: int
    allowance_bytes: int


def check_allowances(
    settings: Settings, lxd: Lxd, *, now: datetime | None = None
) -> list[Crossing]:
    """One pass over every live server (after a usage sample pass): record the levels crossed,
    throttle past 100%, and hold each affected server's egress at its due rate."""
    now = now or utcnow()
    start = month_start(now)
    with session_scope(settings) as session:
        servers = [
            s
            for s in session.exec(select(Server).where(col(Server.deleted_at).is_(None))).all()
            if _allowance(s) > 0
        ]
        ids = [s.id for s in servers if s.id is not None]
        held = standings(settings, server_ids=ids, now=now)
        by_since: dict[datetime, list[int]] = {}
        for sid in ids:
            by_since.setdefault(held[sid].counted_from if sid in held else start, []).append(sid)
        sent: dict[int, int] = {}
        for since, group in by_since.items():
            sent.update(_sent_since(session, since, group))
        # Servers throttled last month are restored when the month turns.
        previous = set(
            session.exec(
                select(Event.server_id).where(
                    Event.type == EventType.TRANSFER_THROTTLED,
                    col(Event.at) >= start - timedelta(days=31),
                    col(Event.at) < start,
                )
            ).all()
        )
    crossings, recorded = [], []
    with session_scope(settings, immediate=True) as session:
        for server in servers:
            assert server.id is not None
            st = held.setdefault(server.id, Standing(counted_from=start))
            used, allowance = sent.get(server.id, 0), _allowance(server)
            events = _cross(session, settings, server, st, used=used, allowance=allowance)
            recorded += events
            crossings += [Crossing(server.id, e.type, used, allowance) for e in events]
    for event in recorded:
        post_event(settings, event)
    due = {c.server_id for c in crossings} | (previous - {None})
    for server in servers:
        if server.id in due:
            _hold(settings, lxd, server, throttled=held[server.id or 0].throttled)
    return crossings


def _cross(
    session: Session,
    settings: Settings,
    server: Server,
    st: Standing,
    *,
    used: int,
    allowance: int,
) -> list[Event]:
    """The events a server's use earns now (each level once per month or reset)."""
    events = []
    percent = used * 100 / allowance
    details = {"used_bytes": used, "allowance_bytes": allowance, "percent": round(percent, 1)}
    for level, kind in LEVELS:
        if percent >= level and level not in st.notified:
            st.notified.add(level)
            message = f"{percent:.0f}% of this month's transfer allowance used"
            severity = "warning" if level >= 100 else "info"
            events.append(
                record_in(
                    session,
                    server=server,
                    type=kind,
                    message=message,
                    severity=severity,
                    details=details,
                )
            )
    rate = settings.transfer_throttle_mbit
    if percent >= 100 and rate > 0 and not st.throttled and not st.lifted:
        st.throttled = True
        mbit = egress.wanted_mbit(settings, server, throttled=True)
        events.append(
            record_in(
                session,
                server=server,
                type=EventType.TRANSFER_THROTTLED,
                message=f"egress throttled to {mbit} Mbit/s until the month turns",
                severity="warning",
                details={**details, "throttle_mbit": mbit},
            )
        )
    session.flush()  # ids for the webhook
    return events


def _hold(settings: Settings, lxd: Lxd, server: Server, *, throttled: bool) -> None:
    try:
        egress.hold(settings, lxd, server, throttled=throttled)
    except ContainerVpsError as exc:
        # The reconciler's next pass tries again.
        log.warning("could not hold egress rate", extra={"server": server.id, "error": exc})


def unthrottle(
    settings: Settings, lxd: Lxd, *, server_id: int, reset: bool = False, by: str = "operator"
) -> Event:
    """Lift a server's throttle for the rest of the month (``reset``: and count its allowance
    again from now, so 80% and 100% are told, and throttled, anew)."""
    with session_scope(settings, immediate=True) as session:
        server = live_server(session, server_id=server_id, tenant_id=None)
        what = "allowance reset" if reset else "throttle lifted for the rest of the month"
        event = record_in(
            session,
            server=server,
            type=EventType.TRANSFER_UNTHROTTLED,
            message=f"transfer {what} by the {by}",
            details={"reset": reset, "by": by},
        )
        session.flush()
    post_event(settings, event)
    egress.hold(settings, lxd, server, throttled=False)
    return event
