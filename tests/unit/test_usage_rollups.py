"""Usage samples carry their growth; retention rolls them into hours and months without
changing any month's totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Server, UsageRollup, UsageSample
from containervps.services.metering import rollups, sampling, usage
from containervps.services.metering.host_counters import Counters
from tests.unit.fakes import make_tenant

START = datetime(2026, 10, 31, 22, 0, tzinfo=UTC)  # samples run across a month's end


def _server(s: Settings, tenant_id: int, name: str) -> int:
    with session_scope(s) as session:
        row = Server(
            tenant_id=tenant_id,
            name=name,
            plan="nano",
            image="busybox",
            status="running",
            lxd_project=f"p{tenant_id}",
            lxd_name=name,
            vcpus=1,
            memory_mib=256,
            disk_gib=2,
            processes=256,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def _counters(cpu_s: float, tx: int) -> Counters:
    return Counters(
        cpu_seconds=cpu_s, memory_bytes=10 * 2**20, disk_bytes=2**20, rx_bytes=tx // 2, tx_bytes=tx
    )


def _sample_series(
    s: Settings, tenant_id: int, name: str, tx: list[int], mp: pytest.MonkeyPatch
) -> int:
    """One bulk sampling pass per value, an hour apart from START; returns the server id.

    The host's counters are replaced by the series (no LXD, no cgroups here)."""
    sid = _server(s, tenant_id, name)
    for i, value in enumerate(tx):
        now = {(f"p{tenant_id}", name): _counters(float(value) / 100, value)}
        mp.setattr(sampling, "read_counters", lambda settings, lxd, now=now: now)
        assert usage.sample_all(s, None) == 1  # type: ignore[arg-type]
        with session_scope(s, immediate=True) as session:  # place it in time
            row = session.exec(
                select(UsageSample)
                .where(UsageSample.server_id == sid)
                .order_by(col(UsageSample.id).desc())
            ).first()
            assert row is not None
            row.at = START + timedelta(hours=i)
            session.add(row)
    return sid


def _months(s: Settings, tenant_id: int) -> dict[str, tuple[float, int]]:
    out = {}
    for month in ("2026-10", "2026-11"):
        rows = usage.monthly_usage(s, tenant_id=tenant_id, month=month)
        out[month] = (sum(t.cpu_seconds for _, t in rows), sum(t.net_tx_bytes for _, t in rows))
    return out


def test_samples_store_growth_across_a_restart(
    db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id = make_tenant(db)
    sid = _sample_series(
        db, tenant_id, "a", [1000, 1500, 300, 800], monkeypatch
    )  # restarted after 1500
    with session_scope(db) as session:
        rows = session.exec(
            select(UsageSample).where(UsageSample.server_id == sid).order_by(col(UsageSample.at))
        ).all()
    # The first sample counts from zero: the NIC came up with the server (traffic before the
    # first sample is not lost).
    assert [r.tx_delta for r in rows] == [1000, 500, 300, 500]
    assert [round(r.cpu_delta, 2) for r in rows] == [10.0, 5.0, 3.0, 5.0]


def test_roll_ups_keep_every_months_totals_exact(
    db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant_id = make_tenant(db)
    tx = [100 * (i + 1) for i in range(60)]  # 60 hourly samples from Oct 31 22:00
    tx[30] = 50  # a restart in November
    sid = _sample_series(db, tenant_id, "b", tx, monkeypatch)
    before = _months(db, tenant_id)
    assert before["2026-10"][1] == 200 and before["2026-11"][1] > 0  # 100 + 100 growth

    now = START + timedelta(hours=60 + 48)  # all but the newest sample are past 48 h
    done = rollups.compact(db, now=now)
    assert done.samples_rolled == 59
    assert _months(db, tenant_id) == before
    with session_scope(db) as session:
        raw = session.exec(select(UsageSample).where(UsageSample.server_id == sid)).all()
        hours = session.exec(select(UsageRollup).where(UsageRollup.period == "hour")).all()
    assert len(raw) == 1 and raw[0].net_tx_bytes == tx[-1]  # the baseline of the next sample
    assert len(hours) == 59 and sum(h.samples for h in hours) == 59

    later = now + timedelta(days=100)  # hours past 90 days become months
    assert rollups.compact(db, now=later).hours_rolled == 59
    assert _months(db, tenant_id) == before
    with session_scope(db) as session:
        periods = [r.period for r in session.exec(select(UsageRollup)).all()]
    assert sorted(periods) == ["month", "month"]
    assert rollups.compact(db, now=later) == rollups.Compacted(0, 0)  # nothing twice


def test_compaction_keeps_recent_samples_raw(db: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant_id = make_tenant(db)
    _sample_series(db, tenant_id, "c", [10, 20, 30], monkeypatch)
    done = rollups.compact(db, now=START + timedelta(hours=3))
    assert done == rollups.Compacted(0, 0)
    assert (
        len(
            usage.metrics(
                db, server_id=1, tenant_id=None, start=START, end=START + timedelta(hours=4)
            )[0]
        )
        == 3
    )
