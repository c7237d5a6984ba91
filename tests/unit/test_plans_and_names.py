"""Server names, the seeded plan catalogue, plan limits as LXD config, plan creation."""

from __future__ import annotations

import pytest

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Plan
from containervps.errors import Conflict, InvalidInput
from containervps.schemas.common import build
from containervps.schemas.plan import PlanCreate
from containervps.services.servers import limits as server_limits
from containervps.services.servers import queries
from containervps.services.tenancy import plans


def _plan(name: str, vcpus: int) -> PlanCreate:
    sizes = {"memory_mib": 64, "disk_gib": 1, "disk_read_iops": 10, "disk_write_iops": 10}
    sizes |= {"disk_read_mb_s": 5, "disk_write_mb_s": 5}
    rates = {"net_ingress_mbit": 1, "net_egress_mbit": 1, "max_processes": 64, "transfer_gib": 1}
    return build(PlanCreate, name=name, vcpus=vcpus, **sizes, **rates)


@pytest.mark.parametrize("name", ["a", "web-1", "x" * 63, "0abc"])
def test_valid_hostnames(name: str) -> None:
    queries.validate_name(name)


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "a_b", "a.b", "x" * 64, "a b", "é"])
def test_invalid_hostnames(name: str) -> None:
    with pytest.raises(InvalidInput):
        queries.validate_name(name)


def test_seeded_plans_and_limits_show_unenforced_egress(db: Settings) -> None:
    names = [p.name for p in plans.list_plans(db)]
    assert names[:4] == ["nano", "micro", "small", "medium"]
    with session_scope(db) as session:
        nano = session.get(Plan, "nano")
    assert nano is not None
    limits = server_limits.plan_limits(nano, egress_enforced=False, egress_reason="no tc police")
    assert limits["net_egress"] == {
        "value": 50,
        "unit": "Mbit/s",
        "enforced": False,
        "reason": "no tc police",
    }
    config, devices = server_limits.instance_limits(limits, pool="cvps", network="br")
    assert config == {
        "limits.cpu": "1",
        "limits.cpu.allowance": "100%",
        "limits.memory": "256MiB",
        "limits.memory.enforce": "hard",
        "limits.processes": "256",
    }
    assert devices["root"]["limits.read"] == "500iops" and devices["root"]["size"] == "2GiB"
    assert "limits.egress" not in devices["eth0"] and devices["eth0"]["limits.ingress"] == "50Mbit"
    # The seeded plans carry a tenth of their IOPS as MB/s (migration 0010).
    assert (nano.disk_read_mb_s, nano.disk_write_mb_s) == (50, 25)
    assert limits["disk_write_mb_s"]["value"] == 25 and limits["disk_write_mb_s"]["enforced"]
    assert "buffered writeback is not throttled" in limits["disk_write_mb_s"]["reason"]
    assert "vcpus/ceil(R/C)" in limits["vcpus"]["guarantee"]
    enforced = server_limits.plan_limits(nano, egress_enforced=True)
    assert (
        server_limits.instance_limits(enforced, pool="p", network="n")[1]["eth0"]["limits.egress"]
        == "50Mbit"
    )


def test_create_plan_validates(db: Settings) -> None:
    spec = _plan("tiny", 1)
    plans.create_plan(db, spec)
    with pytest.raises(Conflict):
        plans.create_plan(db, spec)
    with pytest.raises(InvalidInput):
        plans.create_plan(db, _plan("Bad Name", 1))
    with pytest.raises(InvalidInput):
        plans.create_plan(db, _plan("zero", 0))


def test_a_plan_without_disk_bandwidth_gets_a_tenth_of_its_iops() -> None:
    spec = _plan("p", 1).model_dump(exclude={"disk_read_mb_s", "disk_write_mb_s"})
    spec |= {"disk_read_iops": 500, "disk_write_iops": 5}
    plan = build(PlanCreate, **spec)
    assert (plan.disk_read_mb_s, plan.disk_write_mb_s) == (50, 1)
    given = build(PlanCreate, **spec | {"disk_read_mb_s": 7})
    assert given.disk_read_mb_s == 7
