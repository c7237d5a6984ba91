"""Admission against the tenant quota and the host capacity, also under concurrency."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Quota, Server
from containervps.errors import ResourceLimitExceeded, ResourceUnavailable
from containervps.schemas.quota import Usage
from containervps.services.capacity import admission
from containervps.services.capacity.admission import HostCapacity
from tests.unit.fakes import create, make_tenant


def _admit(
    session: Session,
    *,
    tenant_id: int,
    quota: Quota,
    capacity: admission.HostCapacity,
    want: Usage,
    want_iops: admission.Iops = admission.Iops(),
) -> None:
    """The create path's two checks in its order: the tenant's quota, then the host."""
    admission.admit_quota(session, tenant_id=tenant_id, quota=quota, want=want)
    admission.admit_host(session, capacity=capacity, want=want, want_iops=want_iops)


def test_admission_quota_then_capacity(db: Settings) -> None:
    tenant_id = make_tenant(db)
    with session_scope(db) as session:
        quota = session.get(Quota, tenant_id)
        assert quota is not None
        roomy = HostCapacity(servers=100, vcpus=100, memory_mib=10**6, disk_gib=10**4)
        _admit(
            session, tenant_id=tenant_id, quota=quota, capacity=roomy, want=Usage(1, 1, 256, 2, 256)
        )
        with pytest.raises(ResourceLimitExceeded) as over:
            _admit(
                session,
                tenant_id=tenant_id,
                quota=quota,
                capacity=roomy,
                want=Usage(1, 5, 256, 2, 256),
            )
        assert over.value.details["limit"] == "vcpus"
        tight = HostCapacity(servers=100, vcpus=100, memory_mib=100, disk_gib=10**4)
        with pytest.raises(ResourceUnavailable) as full:
            _admit(
                session,
                tenant_id=tenant_id,
                quota=quota,
                capacity=tight,
                want=Usage(1, 1, 256, 2, 256),
            )
        assert full.value.details == {"resource": "memory_mib", "free": 100, "requested": 256}


def test_concurrent_admissions_never_overshoot(db: Settings) -> None:
    tenant_id = make_tenant(db, max_servers=3)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            create(db, tenant_id, f"s{i}")
            outcomes.append("ok")
        except ResourceLimitExceeded:
            outcomes.append("quota")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 3 and outcomes.count("quota") == 17
    with session_scope(db) as session:
        assert len(session.exec(select(Server).where(Server.tenant_id == tenant_id)).all()) == 3


def test_disk_iops_are_admitted_against_the_measured_disk_times_the_ratio(db: Settings) -> None:
    tenant_id = make_tenant(db)
    create(db, tenant_id, "first")  # a nano row: 500 read, 250 write IOPS held
    with session_scope(db) as session:
        quota = session.get(Quota, tenant_id)
        assert quota is not None
        assert admission.iops_held(session) == admission.Iops(500, 250)
        host = HostCapacity(
            servers=100,
            vcpus=100,
            memory_mib=10**6,
            disk_gib=10**4,
            disk_read_iops=10**6,
            disk_write_iops=400,
        )
        want = Usage(1, 1, 256, 2, 256)
        with pytest.raises(ResourceUnavailable) as full:
            _admit(
                session,
                tenant_id=tenant_id,
                quota=quota,
                capacity=host,
                want=want,
                want_iops=admission.Iops(500, 250),
            )
        assert full.value.details == {
            "resource": "disk_iops",
            "direction": "write",
            "free": 150,
            "requested": 250,
        }
        assert "disk_iops (write) free 150" in full.value.brief
        # Unmeasured disk: IOPS are not a limit; a shrink is never refused.
        unmeasured = HostCapacity(servers=100, vcpus=100, memory_mib=10**6, disk_gib=10**4)
        _admit(
            session,
            tenant_id=tenant_id,
            quota=quota,
            capacity=unmeasured,
            want=want,
            want_iops=admission.Iops(500, 250),
        )
        _admit(
            session,
            tenant_id=tenant_id,
            quota=quota,
            capacity=host,
            want=Usage(0, 0, 0, 0, 0),
            want_iops=admission.Iops(-100, -50),
        )
