"""Unit tests of the platform's IPv4 addresses: ranges, lowest free, reuse, exhaustion."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from sqlalchemy.exc import IntegrityError

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Tenant
from containervps.errors import HostSetupError, ResourceUnavailable
from containervps.services.servers import addresses
from tests.unit.fakes import add_server


def test_dhcp_keeps_the_top_of_the_subnet_and_servers_the_rest() -> None:
    settings = Settings(bridge_subnet="10.213.0.1/20")
    assert addresses.dhcp_range(settings) == (
        IPv4Address("10.213.15.1"),
        IPv4Address("10.213.15.254"),
    )
    assert addresses.static_range(settings) == (
        IPv4Address("10.213.0.1"),
        IPv4Address("10.213.15.0"),
    )
    small = Settings(bridge_subnet="192.168.5.1/26")  # 64 addresses: a quarter to DHCP
    assert addresses.dhcp_range(small) == (IPv4Address("192.168.5.47"), IPv4Address("192.168.5.62"))


def test_lowest_free_address_skips_gateway_and_live_servers_and_runs_out(db: Settings) -> None:
    settings = db.model_copy(update={"bridge_subnet": "10.9.0.1/28"})  # .1-.14, DHCP .11-.14
    with session_scope(settings) as session:
        tenant = Tenant(name="t", lxd_project="p")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        tid = tenant.id
        add_server(session, tid, "a", ipv4="10.9.0.2")
        add_server(session, tid, "gone", ipv4="10.9.0.3", deleted=True)  # freed on delete
    with session_scope(settings) as session:
        assert addresses.allocate_ipv4(session, settings) == "10.9.0.3"
    with session_scope(settings) as session:
        for i, last in enumerate(range(3, 11)):
            add_server(session, tid, f"s{i}", ipv4=f"10.9.0.{last}")
    with session_scope(settings) as session, pytest.raises(ResourceUnavailable) as err:
        addresses.allocate_ipv4(session, settings)
    assert err.value.details["resource"] == "ipv4_addresses"


def test_two_live_servers_cannot_hold_one_address(db: Settings) -> None:
    with pytest.raises(IntegrityError), session_scope(db) as session:
        tenant = Tenant(name="t", lxd_project="p")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        add_server(session, tenant.id, "a", ipv4="10.213.0.9")
        add_server(session, tenant.id, "b", ipv4="10.213.0.9")


def test_ipv6_is_the_slaac_address_of_a_fixed_mac_lowest_free_first(db: Settings) -> None:
    settings = db.model_copy(update={"bridge_ipv6_subnet": "fd00:1:2:1::1/64"})
    with session_scope(settings) as session:
        tenant = Tenant(name="t", lxd_project="p")
        session.add(tenant)
        session.flush()
        assert tenant.id is not None
        first = addresses.allocate_ipv6(session, settings)
        add_server(session, tenant.id, "a", ipv6=first)
        add_server(session, tenant.id, "gone", ipv6="fd00:1:2:1:863:76ff:fe00:2", deleted=True)
        second = addresses.allocate_ipv6(session, settings)
    # EUI-64 of 0a:63:76:00:00:01: the universal/local bit flipped, ff:fe in the middle.
    assert first == "fd00:1:2:1:863:76ff:fe00:1"
    assert addresses.mac_of(first) == "0a:63:76:00:00:01"
    assert second == "fd00:1:2:1:863:76ff:fe00:2"  # freed by the deleted server


def test_the_default_ipv6_prefix_is_a_stable_ula_64_and_others_must_be_64() -> None:
    one = addresses.default_ipv6_subnet("3d1219c7c4c5404aaa1f6d2a48adfda4")
    assert one == addresses.default_ipv6_subnet("3d1219c7c4c5404aaa1f6d2a48adfda4")
    assert one != addresses.default_ipv6_subnet("another-machine")
    assert one.startswith("fd") and one.endswith(":1::1/64")
    assert addresses.ipv6_subnet(Settings(bridge_ipv6_subnet=one)).network.prefixlen == 64
    for bad in ("fd00::1/48", "10.0.0.1/24", "nonsense"):
        with pytest.raises(HostSetupError):
            addresses.ipv6_subnet(Settings(bridge_ipv6_subnet=bad))
