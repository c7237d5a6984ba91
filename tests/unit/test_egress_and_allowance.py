"""Who enforces egress, IFB names, the transfer allowance's standing and events, and usage
samples racing each other (no LXD here: servers without an egress mechanism are not held)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Event, Plan, Server, UsageSample
from containervps.services.events import EventType, record
from containervps.services.events.webhook import post_event
from containervps.services.metering import allowance, sampling
from containervps.services.metering.host_counters import Counters
from containervps.services.servers import egress_shaping
from containervps.services.servers import limits as server_limits
from containervps.shell import Completed
from tests.unit.fakes import make_tenant

GIB = 2**30


def _nano(db: Settings) -> Plan:
    with session_scope(db) as session:
        plan = session.get(Plan, "nano")
    assert plan is not None
    return plan


def test_platform_shaping_shows_enforced_and_keeps_lxd_limit_off_the_nic(db: Settings) -> None:
    nano = _nano(db)
    shaped = server_limits.plan_limits(
        nano, egress_enforced=True, egress_reason="LXD refused", egress_mechanism="platform"
    )
    assert shaped["net_egress"]["enforced"] is True
    assert shaped["net_egress"]["mechanism"] == "platform"
    assert server_limits.egress_mechanism(shaped) == "platform"
    assert (
        "limits.egress"
        not in server_limits.instance_limits(shaped, pool="p", network="n")[1]["eth0"]
    )
    by_lxd = server_limits.plan_limits(nano, egress_enforced=True, egress_mechanism="lxd")
    eth0 = server_limits.instance_limits(by_lxd, pool="p", network="n")[1]["eth0"]
    assert eth0["limits.egress"] == f"{nano.net_egress_mbit}Mbit"
    # Servers limited before the platform could shape name no mechanism: LXD held them.
    legacy = server_limits.plan_limits(nano, egress_enforced=True)
    assert "mechanism" not in legacy["net_egress"]
    assert server_limits.egress_mechanism(legacy) == "lxd"
    none = server_limits.plan_limits(nano, egress_enforced=False, egress_reason="x")
    assert server_limits.egress_mechanism(none) == ""
    # The transfer allowance: enforced when a throttle rate is set, else only metered.
    throttled = server_limits.plan_limits(
        nano, egress_enforced=True, egress_mechanism="platform", throttle_mbit=7
    )
    assert throttled["transfer"]["enforced"] is True
    assert throttled["transfer"]["throttle_mbit"] == 7
    assert shaped["transfer"]["enforced"] is False


def test_ifb_names_fit_the_kernel_and_are_stable_per_server() -> None:
    a = egress_shaping.ifb_name(server_id=1, project="t1", name="web")
    assert a == egress_shaping.ifb_name(server_id=1, project="t1", name="web")
    assert len(a) <= 15 and a.startswith(egress_shaping.IFB_PREFIX)
    # Another database's server 1 on the same host gets another device.
    assert a != egress_shaping.ifb_name(server_id=1, project="t2", name="web")
    assert a != egress_shaping.ifb_name(server_id=2, project="t1", name="web")


def _server(db: Settings, *, transfer_gib: int = 1) -> Server:
    tenant_id = make_tenant(db)
    nano = _nano(db)
    nano.transfer_gib = transfer_gib
    with session_scope(db) as session:
        row = Server(
            tenant_id=tenant_id,
            name="s",
            plan="nano",
            image="busybox",
            status="running",
            lxd_project=f"p{tenant_id}",
            lxd_name="s",
            vcpus=1,
            memory_mib=256,
            disk_gib=2,
            processes=256,
            # Egress not enforced here: the pass records and decides without touching a NIC.
            limits=server_limits.plan_limits(nano, egress_enforced=False, throttle_mbit=5),
        )
        session.add(row)
        session.flush()
        session.refresh(row)
        return row


def _sent(db: Settings, row: Server, tx: int, *, at: datetime | None = None) -> None:
    with session_scope(db) as session:
        session.add(
            UsageSample(
                server_id=row.id or 0,
                tenant_id=row.tenant_id,
                at=at or datetime.now(UTC),
                cpu_seconds=0.0,
                memory_bytes=0,
                disk_bytes=0,
                net_rx_bytes=0,
                net_tx_bytes=0,
                tx_delta=tx,
            )
        )


def _types(crossings: list[allowance.Crossing]) -> list[str]:
    return sorted(c.type for c in crossings)


def test_allowance_levels_are_told_once_and_throttle_until_lifted_or_reset(db: Settings) -> None:
    row = _server(db)
    _sent(db, row, int(0.5 * GIB))
    assert allowance.check_allowances(db, None) == []  # type: ignore[arg-type]
    _sent(db, row, int(0.35 * GIB))
    assert _types(allowance.check_allowances(db, None)) == ["server.transfer_80"]  # type: ignore[arg-type]
    assert allowance.check_allowances(db, None) == []  # type: ignore[arg-type]
    _sent(db, row, int(0.3 * GIB))
    crossings = allowance.check_allowances(db, None)  # type: ignore[arg-type]
    assert _types(crossings) == ["server.transfer_exceeded", "server.transfer_throttled"]
    assert crossings[0].used_bytes == int(0.5 * GIB) + int(0.35 * GIB) + int(0.3 * GIB)
    assert allowance.is_throttled(db, row.id or 0)

    # Next month nothing is due: the standing starts empty.
    next_month = datetime.now(UTC).replace(day=1) + timedelta(days=32)
    assert allowance.standings(db, now=next_month) == {}

    # Lifted: not throttled again this month, however much more is sent.
    record(
        db,
        server_id=row.id or 0,
        type=EventType.TRANSFER_UNTHROTTLED,
        message="lifted",
        details={"reset": False},
    )
    _sent(db, row, GIB)
    assert allowance.check_allowances(db, None) == []  # type: ignore[arg-type]
    assert not allowance.is_throttled(db, row.id or 0)

    # Reset: counted again from the reset on; older samples no longer count.
    record(
        db,
        server_id=row.id or 0,
        type=EventType.TRANSFER_UNTHROTTLED,
        message="reset",
        details={"reset": True},
    )
    assert allowance.check_allowances(db, None) == []  # type: ignore[arg-type]
    _sent(db, row, int(1.2 * GIB))
    assert _types(allowance.check_allowances(db, None)) == [  # type: ignore[arg-type]
        "server.transfer_80",
        "server.transfer_exceeded",
        "server.transfer_throttled",
    ]
    with session_scope(db) as session:
        told = session.exec(
            select(Event.type).where(Event.server_id == row.id).order_by(col(Event.id))
        ).all()
    assert told.count("server.transfer_80") == 2 and told.count("server.transfer_throttled") == 2


def test_a_failing_webhook_is_logged_not_raised(
    db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    event = Event(id=1, tenant_id=1, server_id=1, type="server.transfer_80", message="m")
    assert post_event(db, event) is False  # none set
    # A port nothing listens on (bound then closed), with a bounded wait.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = db.model_copy(
        update={"transfer_webhook_url": f"http://127.0.0.1:{port}/", "transfer_webhook_timeout": 2}
    )
    with caplog.at_level(logging.WARNING):
        assert post_event(down, event) is False
    assert "webhook failed" in caplog.text


def test_a_sample_older_than_the_newest_is_not_stored(db: Settings) -> None:
    row = _server(db)
    now = datetime.now(UTC)
    reading = Counters(cpu_seconds=1.0, memory_bytes=1, disk_bytes=1, rx_bytes=10, tx_bytes=100)
    assert sampling._store(db, [(row, reading)], at=now) == 1
    later = Counters(cpu_seconds=2.0, memory_bytes=1, disk_bytes=1, rx_bytes=20, tx_bytes=300)
    # A periodic pass that read the counters before this boundary sample was stored.
    assert sampling._store(db, [(row, later)], at=now - timedelta(seconds=1)) == 0
    assert sampling._store(db, [(row, later)], at=now + timedelta(seconds=1)) == 1
    with session_scope(db) as session:
        deltas = session.exec(
            select(UsageSample.tx_delta)
            .where(UsageSample.server_id == row.id)
            .order_by(col(UsageSample.at))
        ).all()
    assert deltas == [100, 200]  # the first counts from zero: the NIC came up with the server


def test_shaping_is_read_from_tc_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """As tc 6.1 prints an HTB class and a mirred filter (captured on this host)."""
    ifb = "cve0123456789ab"
    outputs = {
        "class": "class htb 1:1 root prio 0 rate 50Mbit ceil 50Mbit burst 1600b cburst 1600b \n",
        "filter": (
            "filter protocol all pref 1 u32 chain 0 fh 800::800 order 2048 key ht 800 bkt 0 "
            "terminal flowid not_in_hw \n  match 00000000/00000000 at 0\n"
            f"\taction order 1: mirred (Egress Redirect to device {ifb}) stolen\n"
        ),
    }

    def fake(cmd: list[str], **_: object) -> Completed:
        return Completed(0, outputs[cmd[1]], "")

    monkeypatch.setattr(egress_shaping, "probe", fake)
    assert egress_shaping.shaping(ifb=ifb, veth="veth0") == egress_shaping.Shaping(50, True)
    assert egress_shaping.shaping(ifb="cveother", veth="veth0").redirected is False
    outputs["class"] = "class htb 1:1 root prio 0 rate 512Kbit ceil 512Kbit burst 1600b\n"
    assert egress_shaping.shaping(ifb=ifb, veth=None) == egress_shaping.Shaping(1, False)
