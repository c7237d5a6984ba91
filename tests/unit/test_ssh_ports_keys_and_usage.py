"""Unit tests of the VPS-experience logic: SSH ports, counter growth, months, key refs."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from containervps.config import Settings
from containervps.db import migrate
from containervps.db.engine import session_scope
from containervps.db.models import Tenant, UsageSample
from containervps.errors import HostSetupError, InvalidInput, ResourceUnavailable
from containervps.services.metering import usage
from containervps.services.servers import access
from containervps.services.tenancy import ssh_keys
from tests.unit.fakes import add_server

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f t"


@pytest.fixture
def db(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path, ssh_port_min=0, ssh_port_max=0)
    migrate.upgrade(s)
    return s


def _free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports nothing on the host holds right now."""
    for base in range(43000, 60000, count):
        socks = [socket.socket() for _ in range(count)]
        try:
            for offset, sock in enumerate(socks):
                sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return base
    raise AssertionError("no free port range")


def test_ssh_ports_skip_taken_and_bound_and_run_out(db: Settings) -> None:
    base = _free_ports(4)
    settings = db.model_copy(
        update={"ssh_port_min": base, "ssh_port_max": base + 3, "ssh_listen_address": "127.0.0.1"}
    )
    with session_scope(settings) as session:
        tenant = Tenant(name="t", lxd_project="p")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        add_server(session, tenant.id, f"s{base}", ssh_port=base)  # live: taken
        add_server(session, tenant.id, f"s{base + 1}", ssh_port=base + 1, deleted=True)  # freed
    with socket.socket() as busy, session_scope(settings) as session:
        busy.bind(("127.0.0.1", base + 1))  # something else on the host holds it
        assert access.allocate_ssh_port(session, settings) == base + 2
    with session_scope(settings) as session:
        assert access.allocate_ssh_port(session, settings) == base + 1
    full = settings.model_copy(update={"ssh_port_max": base})
    with session_scope(full) as session, pytest.raises(ResourceUnavailable) as err:
        access.allocate_ssh_port(session, full)
    assert err.value.details["resource"] == "ssh_ports"
    # An SSH address that is not this host's (with cluster members the servers' gateway is on
    # the members): the operator is told to set one, not that the ports ran out.
    elsewhere = settings.model_copy(update={"ssh_listen_address": "203.0.113.7"})
    with session_scope(elsewhere) as session, pytest.raises(HostSetupError) as err2:
        access.allocate_ssh_port(session, elsewhere)
    assert "CONTAINERVPS_SSH_LISTEN_ADDRESS" in (err2.value.resolution or "")


def test_counter_growth_survives_restarts() -> None:
    def rows(values: list[float]) -> list[UsageSample]:
        return [
            UsageSample(
                server_id=1,
                tenant_id=1,
                cpu_seconds=v,
                memory_bytes=0,
                disk_bytes=0,
                net_rx_bytes=int(v),
                net_tx_bytes=0,
            )
            for v in values
        ]

    totals = usage._totals(rows([10, 15, 3, 8]))  # restarted between 15 and 3
    assert totals.cpu_seconds == 5 + 3 + 5 and totals.net_rx_bytes == 13 and totals.samples == 4
    assert usage._totals(rows([])).cpu_seconds == 0


def test_month_bounds() -> None:
    assert usage.month_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    for bad in ("2026-13", "26-01", "2026-1", ""):
        with pytest.raises(InvalidInput):
            usage.month_bounds(bad)


def test_key_refs_resolve_by_id_or_name_and_unknown_is_invalid(db: Settings) -> None:
    with session_scope(db) as session:
        tenant = Tenant(name="t", lxd_project="p")
        session.add(tenant)
        session.flush()
        tid = tenant.id
    assert tid is not None
    key = ssh_keys.add_key(db, tenant_id=tid, name="laptop", public_key=ED25519)
    line = ssh_keys.parse_public_key(ED25519).openssh
    assert ssh_keys.resolve_keys(db, tenant_id=tid, refs=[key.id or 0, "laptop"]) == [line]
    with pytest.raises(InvalidInput) as err:
        ssh_keys.resolve_keys(db, tenant_id=tid, refs=["nope"])
    assert err.value.details["field"] == "ssh_keys"
