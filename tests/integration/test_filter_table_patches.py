"""A server put in or taken out of the filter table alone (render.add_plain/remove_plain) leaves
the kernel's table exactly as a whole rebuild would, on real nftables (scratch tables)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from containervps.services.firewalls.render import FilterServer, add_plain, remove_plain, render
from containervps.shell import probe, run

GATEWAY = "10.250.0.1"
RULE = {"direction": "in", "protocol": "tcp", "port": "80", "source_ips": ["0.0.0.0/0", "::/0"]}
A = FilterServer(id=1, tenant_id=1, ipv4="10.250.0.2", ipv6="fd00:250::2")
B = FilterServer(id=2, tenant_id=2, ipv4="10.250.0.3", ipv6="fd00:250::3", rules=[RULE])
C = FilterServer(id=3, tenant_id=1, ipv4="10.250.0.4", ipv6="fd00:250::4")
D = FilterServer(id=4, tenant_id=3, ipv4="10.250.0.5", ipv6=None)  # a new tenant, IPv4 only


@pytest.fixture
def tables() -> Iterator[tuple[str, str]]:
    names = tuple(f"cvpspatch{secrets.token_hex(3)}{n}" for n in ("p", "r"))
    yield names  # type: ignore[misc]
    for name in names:
        probe(["nft", "delete", "table", "inet", name])


def _load(script: str) -> None:
    run(["nft", "-f", "-"], what="load a scratch filter table", input_text=script)


def _shape(table: str) -> dict[str, Any]:
    """The table as sets, maps and chains with their contents (names and order free)."""
    listed = json.loads(run(["nft", "-j", "list", "table", "inet", table], what="list"))
    shape: dict[str, Any] = {}
    for item in listed["nftables"]:
        for kind in ("set", "map"):
            if kind in item:
                elements = item[kind].get("elem", [])
                shape[f"{kind} {item[kind]['name']}"] = sorted(json.dumps(e) for e in elements)
        if "chain" in item:
            shape.setdefault(f"chain {item['chain']['name']}", [])
        if "rule" in item:
            shape.setdefault(f"chain {item['rule']['chain']}", []).append(
                json.dumps(item["rule"]["expr"])
            )
    return shape


def _rendered(table: str, servers: list[FilterServer]) -> dict[str, Any]:
    _load(render(table=table, gateway4=GATEWAY, servers=servers))
    return _shape(table)


def _empty_tenant_parts(shape: dict[str, Any], tenant: int) -> dict[str, Any]:
    """A patched table keeps a tenant's empty sets and chain after its last server went."""
    return {
        k: v
        for k, v in shape.items()
        if k not in {f"set t{tenant}_4", f"set t{tenant}_6"} and k != f"chain iso_{tenant}"
    }


def test_patches_match_whole_rebuilds(tables: tuple[str, str]) -> None:
    patched, rebuilt = tables
    _load(render(table=patched, gateway4=GATEWAY, servers=[A, B]))
    for server in (C, D):
        _load(add_plain(table=patched, server=server))
    assert _shape(patched) == _rendered(rebuilt, [A, B, C, D])

    _load(add_plain(table=patched, server=C))  # a rebuild of C puts it in again: no change
    assert _shape(patched) == _rendered(rebuilt, [A, B, C, D])

    _load(remove_plain(table=patched, server=C))
    assert _shape(patched) == _rendered(rebuilt, [A, B, D])
    _load(remove_plain(table=patched, server=D))
    assert _empty_tenant_parts(_shape(patched), 3) == _rendered(rebuilt, [A, B])


def test_a_patch_that_does_not_fit_the_table_fails_so_the_caller_rebuilds(
    tables: tuple[str, str],
) -> None:
    patched, _ = tables
    missing = probe(["nft", "-f", "-"], input_text=add_plain(table=patched, server=A))
    assert not missing.ok  # no table (a rebooted host): the whole table is needed
    _load(render(table=patched, gateway4=GATEWAY, servers=[A]))
    assert not probe(["nft", "-f", "-"], input_text=remove_plain(table=patched, server=C)).ok
    # C's address still held by A's tenant's entry under another tenant: refused, not merged
    moved = FilterServer(id=5, tenant_id=2, ipv4=A.ipv4, ipv6=A.ipv6)
    assert not probe(["nft", "-f", "-"], input_text=add_plain(table=patched, server=moved)).ok
    (entry,) = _shape(patched)["map in4"]
    assert A.ipv4 in entry and "iso_1" in entry and "iso_2" not in entry
