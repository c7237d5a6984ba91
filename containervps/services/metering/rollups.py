"""Retention: raw samples older than ``usage_raw_hours`` become hourly roll-ups, hourly ones
older than ``usage_hourly_days`` become monthly ones (kept). Sums of per-sample growth are
carried over, so monthly transfer stays exact; each server's newest sample stays raw, as the
baseline of its next one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Event, UsageRollup, UsageSample, utcnow

__all__ = ["Compacted", "compact"]

HOUR, MONTH = "hour", "month"


@dataclass(frozen=True)
class Compacted:
    samples_rolled: int
    hours_rolled: int
    events_pruned: int = 0


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _month(at: datetime) -> datetime:
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _add(
    session: Session,
    *,
    server_id: int,
    tenant_id: int,
    period: str,
    start: datetime,
    piece: UsageRollup,
) -> None:
    """Add ``piece`` into the bucket (server, period, start), creating it if needed."""
    bucket = session.exec(
        select(UsageRollup).where(
            UsageRollup.server_id == server_id,
            UsageRollup.period == period,
            UsageRollup.start == start,
        )
    ).first()
    if bucket is None:
        bucket = _empty(server_id, tenant_id, period, start)
    _merge(bucket, piece)
    session.add(bucket)


def _empty(server_id: int, tenant_id: int, period: str, start: datetime) -> UsageRollup:
    return UsageRollup(
        server_id=server_id,
        tenant_id=tenant_id,
        period=period,
        start=start,
        samples=0,
        cpu_seconds=0.0,
        net_rx_bytes=0,
        net_tx_bytes=0,
        memory_bytes_max=0,
        disk_bytes_last=0,
    )


def _merge(bucket: UsageRollup, piece: UsageRollup) -> None:
    """Add a later piece into a bucket: sums add up, the disk is the latest reading."""
    bucket.samples += piece.samples
    bucket.cpu_seconds += piece.cpu_seconds
    bucket.net_rx_bytes += piece.net_rx_bytes
    bucket.net_tx_bytes += piece.net_tx_bytes
    bucket.memory_bytes_max = max(bucket.memory_bytes_max, piece.memory_bytes_max)
    bucket.disk_bytes_last = piece.disk_bytes_last


def _piece(row: UsageSample | UsageRollup) -> tuple[datetime, UsageRollup]:
    """A row as a roll-up piece, with the time that places it in a bucket."""
    if isinstance(row, UsageRollup):
        return row.start, row
    piece = UsageRollup(
        server_id=row.server_id,
        tenant_id=row.tenant_id,
        period=HOUR,
        start=row.at,
        samples=1,
        cpu_seconds=row.cpu_delta,
        net_rx_bytes=row.rx_delta,
        net_tx_bytes=row.tx_delta,
        memory_bytes_max=row.memory_bytes,
        disk_bytes_last=row.disk_bytes,
    )
    return row.at, piece


def _roll(
    session: Session,
    rows: Iterable[UsageSample | UsageRollup],
    *,
    period: str,
    bucket_of: Callable[[datetime], datetime],
) -> int:
    """Fold rows (oldest first) into buckets of ``period``; return how many were folded."""
    buckets: dict[tuple[int, datetime], UsageRollup] = {}
    count = 0
    for row in rows:
        at, piece = _piece(row)
        key = (row.server_id, bucket_of(at))
        if key not in buckets:
            buckets[key] = _empty(row.server_id, row.tenant_id, period, key[1])
        _merge(buckets[key], piece)
        count += 1
    for (server_id, start), piece in buckets.items():
        _add(
            session,
            server_id=server_id,
            tenant_id=piece.tenant_id,
            period=period,
            start=start,
            piece=piece,
        )
    return count


def compact(settings: Settings, *, now: datetime | None = None) -> Compacted:
    """One retention pass (in one transaction, so totals never count a row twice or never);
    server events older than ``events_retention_days`` go too."""
    now = now or utcnow()
    raw_cutoff = now - timedelta(hours=settings.usage_raw_hours)
    hour_cutoff = now - timedelta(days=settings.usage_hourly_days)
    with session_scope(settings, immediate=True) as session:
        newest = select(func.max(UsageSample.id)).group_by(col(UsageSample.server_id))
        expired = (col(UsageSample.at) < raw_cutoff, col(UsageSample.id).not_in(newest))
        old = session.exec(
            select(UsageSample).where(*expired).order_by(col(UsageSample.at), col(UsageSample.id))
        ).all()
        samples = _roll(session, old, period=HOUR, bucket_of=_hour)
        session.execute(delete(UsageSample).where(*expired))
        session.flush()
        hours = session.exec(
            select(UsageRollup)
            .where(UsageRollup.period == HOUR, col(UsageRollup.start) < _hour(hour_cutoff))
            .order_by(col(UsageRollup.start))
        ).all()
        folded = _roll(session, hours, period=MONTH, bucket_of=_month)
        for row in hours:
            session.delete(row)
        event_cutoff = now - timedelta(days=settings.events_retention_days)
        expired_events = col(Event.at) < event_cutoff
        pruned = session.exec(select(func.count()).where(expired_events)).one()
        session.execute(delete(Event).where(expired_events))
    return Compacted(samples_rolled=samples, hours_rolled=folded, events_pruned=int(pruned))
