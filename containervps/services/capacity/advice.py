"""Overcommit ratios proposed from what running servers really use (`capacity --advise`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server, UsageSample, utcnow
from containervps.services.capacity import admission
from containervps.services.servers.queries import LIVE

__all__ = ["Advice", "advise"]

CPU_TARGET = 0.8  # busiest minute of the window may use this share of the host's CPUs
RATIO_BOUNDS = (1.0, 32.0)
WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Advice:
    setting: str
    current: float
    proposed: float | None  # None: not enough data (basis says what is missing)
    basis: str


def _bounded(value: float) -> float:
    return round(min(max(value, RATIO_BOUNDS[0]), RATIO_BOUNDS[1]), 2)


def _memory(session: Session, settings: Settings, per_server_mib: float | None) -> Advice:
    latest = (
        select(func.max(UsageSample.id).label("last"))
        .where(UsageSample.at >= utcnow() - WINDOW)
        .group_by(col(UsageSample.server_id))
        .subquery()
    )
    rows = session.exec(
        select(Server.memory_mib, UsageSample.memory_bytes)
        .join(latest, col(UsageSample.id) == latest.c.last)
        .join(Server, col(Server.id) == col(UsageSample.server_id))
        .where(LIVE)
    ).all()
    current = settings.memory_overcommit
    if not rows:
        return Advice("memory_overcommit", current, None, "no running server sampled in 24 h")
    sold = sum(mib for mib, _ in rows)
    overhead = per_server_mib or 0.0
    used = sum(b / 2**20 + overhead for _, b in rows)
    total = admission.mem_total_mib()
    usable = (total - settings.capacity_headroom_mib) / total
    basis = (
        f"{len(rows)} servers use {used:.0f} MiB of {sold} MiB sold (latest samples, "
        f"{overhead:.1f} MiB host cost each); keeps {settings.capacity_headroom_mib} MiB free"
    )
    return Advice("memory_overcommit", current, _bounded(usable * sold / used), basis)


def _cpu(session: Session, settings: Settings) -> Advice:
    since = utcnow() - WINDOW
    minutes = session.exec(
        select(func.sum(UsageSample.cpu_delta))
        .where(UsageSample.at >= since)
        .group_by(func.strftime("%Y-%m-%d %H:%M", UsageSample.at))
    ).all()
    sold = session.exec(select(func.coalesce(func.sum(Server.vcpus), 0)).where(LIVE)).one()
    current = settings.cpu_overcommit
    if not minutes or not sold:
        return Advice("cpu_overcommit", current, None, "no usage samples in 24 h")
    interval = max(settings.usage_sample_interval, 1.0)
    peak = max(float(m or 0.0) for m in minutes) / interval  # cores in the busiest minute
    cpus = os.cpu_count() or 1
    if peak <= 0:
        return Advice("cpu_overcommit", current, RATIO_BOUNDS[1], "servers used no CPU in 24 h")
    proposed = CPU_TARGET * sold / peak  # at full sale the busiest minute stays at the target
    basis = (
        f"busiest minute of 24 h: {peak:.2f} cores for {sold} vCPUs sold; "
        f"keeps it at {CPU_TARGET:.0%} of {cpus} host CPUs"
    )
    return Advice("cpu_overcommit", current, _bounded(proposed), basis)


def advise(settings: Settings, *, per_server_mib: float | None) -> list[Advice]:
    """Proposed memory and CPU overcommit ratios, each with the figures behind it."""
    with session_scope(settings) as session:
        return [_memory(session, settings, per_server_mib), _cpu(session, settings)]
