"""The capacity model's arithmetic: more servers per resource, the binding one, and advice."""

from __future__ import annotations

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Plan, UsageSample, utcnow
from containervps.services.capacity import admission
from containervps.services.capacity.advice import advise
from containervps.services.capacity.kernel_limits import raise_kernel_limits
from containervps.services.capacity.planner import Resource, _fit, _needs
from tests.unit.fakes import add_server, make_tenant


def _plan(db: Settings, name: str) -> Plan:
    with session_scope(db) as session:
        plan = session.get(Plan, name)
        assert plan is not None
        return plan


def test_the_scarcest_resource_binds_and_unknown_ones_are_left_out(db: Settings) -> None:
    nano = _plan(db, "nano")  # 1 vCPU, 256 MiB, 2 GiB, 500/250 IOPS
    resources = [
        Resource("vcpus", "", 10, 4, "", True),  # 6 free: 6 more
        Resource("memory_mib", "", 2048, 1024, "", True),  # 1024 free: 4 more
        Resource("disk_write_iops", "", None, 0, "", True),  # unmeasured: no bound
        Resource("host_memory_mib", "", 100, 0, "", False),  # 100 / 30 MiB: 3 more
        Resource("inotify_instances", "", 128, 120, "", False),  # 8 / 4 each: 2 more
    ]
    needs = _needs(nano, cost=20.0, working_set=30.0, kernel={"inotify_instances": 4.0})
    assert needs["host_memory_mib"] == 30.0  # the larger of bench cost and working set
    fit = _fit(nano, resources, needs)
    assert fit.by_resource == {
        "vcpus": 6,
        "memory_mib": 4,
        "host_memory_mib": 3,
        "inotify_instances": 2,
    }
    assert (fit.fits, fit.binding) == (2, "inotify_instances")
    over = [Resource("vcpus", "", 4, 9, "", True)]  # oversold: none more, not negative
    assert _fit(nano, over, needs).fits == 0


def test_advice_needs_samples_and_kernel_limits_are_only_raised(db: Settings, tmp_path) -> None:
    memory, cpu = advise(db, per_server_mib=12.0)
    assert memory.proposed is None and "no running server sampled" in memory.basis
    assert cpu.proposed is None
    sysctls = tmp_path / "sys"
    (sysctls / "fs/inotify").mkdir(parents=True)
    (sysctls / "fs/inotify/max_user_instances").write_text("128\n")
    (sysctls / "fs/inotify/max_user_watches").write_text("99999999\n")
    changes = raise_kernel_limits(proc_sys=sysctls)
    assert changes == ["fs.inotify.max_user_instances: 128 -> 1048576"]
    assert (sysctls / "fs/inotify/max_user_watches").read_text() == "99999999\n"


def test_advice_follows_the_measured_working_sets_and_the_busiest_minute(db: Settings) -> None:
    tenant_id = make_tenant(db)
    now = utcnow()
    with session_scope(db) as session:
        for i in range(4):  # 4 nano servers (256 MiB, 1 vCPU sold each) using 64 MiB each
            server = add_server(session, tenant_id, f"s{i}")
            server.memory_mib = 256
            assert server.id is not None
            session.add(
                UsageSample(
                    server_id=server.id,
                    tenant_id=tenant_id,
                    at=now,
                    cpu_seconds=0.0,
                    memory_bytes=64 * 2**20,
                    disk_bytes=0,
                    net_rx_bytes=0,
                    net_tx_bytes=0,
                    cpu_delta=6.0,  # 0.1 core over a 60 s interval
                )
            )
    memory, cpu = advise(db, per_server_mib=0.0)
    total = admission.mem_total_mib()
    usable = (total - db.capacity_headroom_mib) / total
    assert memory.proposed == round(min(usable * 1024 / 256, 32.0), 2)
    assert "4 servers use 256 MiB of 1024 MiB sold" in memory.basis
    # Busiest minute: 4 x 6 s / 60 s = 0.4 cores for 4 vCPUs; 80% of a full host -> 8x.
    assert cpu.proposed == 8.0 and "0.40 cores for 4 vCPUs" in cpu.basis
