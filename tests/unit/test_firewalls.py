"""Firewalls: rule and target validation, what applies to which server, the rendered table,
the API's answers (the kernel side is tests/integration/test_firewall.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from containervps.api.app import create_app
from containervps.cli import app as cli_app
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Firewall
from containervps.errors import InvalidInput
from containervps.schemas.firewall import ApplyTo, FirewallCreate, FirewallRule, LabelSelectorRef
from containervps.services.firewalls import crud, enforce
from containervps.services.firewalls.render import FilterServer, render, rule_lines
from containervps.services.firewalls.rules import check_rules, check_targets
from containervps.services.tenancy import tokens
from tests.unit.fakes import add_server, make_tenant


def rule(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"direction": "in", "protocol": "tcp", "port": "80"}
    base.setdefault("source_ips", ["0.0.0.0/0"] if fields.get("direction", "in") == "in" else [])
    base.setdefault("destination_ips", [])
    return {**base, **fields}


@pytest.mark.parametrize(
    ("bad", "field", "says"),
    [
        (rule(source_ips=["10.0.0.0/8", "10.0.0.300/32"]), "rules.0.source_ips.1", "CIDR"),
        (rule(port="0"), "rules.0.port", "1-65535"),
        (rule(port="65536"), "rules.0.port", "1-65535"),
        (rule(port="2000-1000"), "rules.0.port", "first port is above"),
        (rule(port="80,443"), "rules.0.port", "port range"),
        (rule(port="\u00b2"), "rules.0.port", "port range"),  # a digit to str.isdigit
        (rule(protocol="icmp", port="80"), "rules.0.port", "only allowed with tcp or udp"),
        (rule(source_ips=[]), "rules.0.source_ips", "required"),
        (rule(destination_ips=["10.0.0.1"]), "rules.0.destination_ips", "not allowed"),
        (rule(direction="out", source_ips=["10.0.0.1"]), "rules.0.source_ips", "not allowed"),
    ],
)
def test_a_bad_rule_names_its_field(bad: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_rules([bad], max_rules=50)
    assert err.value.details["field"] == field
    assert says in str(err.value)


def test_rules_are_capped_and_stored_normalised() -> None:
    with pytest.raises(InvalidInput) as err:
        check_rules([rule()] * 3, max_rules=2)
    assert err.value.details == {"field": "rules", "max": 2}
    [stored] = check_rules(
        [rule(port="0443-0443", source_ips=["10.1.2.3/8", "10.0.0.0/8", "fd00::5/64"])],
        max_rules=2,
    )
    assert stored["port"] == "443"
    assert stored["source_ips"] == ["10.0.0.0/8", "fd00::/64"]


def test_targets_need_their_own_reference_and_a_good_selector() -> None:
    checked = check_targets(
        [
            {"type": "server", "server": {"id": 3}, "label_selector": None},
            {"type": "server", "server": {"id": 3}, "label_selector": None},  # duplicate
            {"type": "label_selector", "server": None, "label_selector": {"selector": "env=prod"}},
        ]
    )
    assert [t["type"] for t in checked] == ["server", "label_selector"]
    for bad, field in (
        ({"type": "server", "server": None, "label_selector": None}, "apply_to.0.server"),
        (
            {"type": "server", "server": {"id": 1}, "label_selector": {"selector": "a"}},
            "apply_to.0.label_selector",
        ),
        (
            {"type": "label_selector", "server": None, "label_selector": {"selector": "a=b=c"}},
            "apply_to.0.label_selector.selector",
        ),
        (
            {"type": "label_selector", "server": None, "label_selector": {"selector": " , "}},
            "apply_to.0.label_selector.selector",
        ),
    ):
        with pytest.raises(InvalidInput) as err:
            check_targets([bad])
        assert err.value.details["field"] == field


def test_firewalls_apply_by_id_and_selector_within_their_tenant_only(db: Settings) -> None:
    mine, other = make_tenant(db), make_tenant(db)
    with session_scope(db) as session:
        web = add_server(
            session, mine, "web", labels={"env": "prod", "role": "web"}, ipv4="10.0.0.2"
        )
        dev = add_server(session, mine, "dev", labels={"env": "dev"}, ipv4="10.0.0.3")
        theirs = add_server(session, other, "x", labels={"env": "prod"}, ipv4="10.0.0.4")
        by_label = Firewall(
            tenant_id=mine,
            name="prod",
            rules=check_rules([rule()], max_rules=5),
            apply_to=[{"type": "label_selector", "label_selector": {"selector": "env=prod,role"}}],
        )
        by_id = Firewall(
            tenant_id=mine,
            name="dev",
            rules=check_rules([rule(direction="out", destination_ips=["::/0"])], max_rules=5),
            apply_to=[{"type": "server", "server": {"id": dev.id}}],
        )
        session.add(by_label)
        session.add(by_id)
        session.flush()
        applied = enforce.applied([by_label, by_id], [web, dev, theirs])
        assert applied == {by_label.id: [web.id], by_id.id: [dev.id]}
        servers = {s.id: s for s in enforce.filter_servers(session)}
        ids = (web.id or 0, dev.id or 0, theirs.id or 0)
    assert servers[ids[2]].rules is None  # no firewall: isolation only
    assert [r["port"] for r in servers[ids[0]].rules or []] == ["80"]
    assert servers[ids[1]].outbound and not servers[ids[0]].outbound


def test_rendered_table_isolates_tenants_and_enforces_rules() -> None:
    servers = [
        FilterServer(1, 7, "10.0.0.2", "fd00::2"),
        FilterServer(2, 7, "10.0.0.3", "fd00::3", [rule(port="22"), rule(protocol="icmp")]),
        FilterServer(
            3,
            8,
            "10.0.0.4",
            None,
            [rule(direction="out", protocol="udp", destination_ips=["1.1.1.1/32"])],
        ),
    ]
    text = render(table="t", gateway4="10.0.0.1", servers=servers)
    assert text.startswith("add table inet t\ndelete table inet t\n")  # one transaction
    assert "10.0.0.2 : jump iso_7" in text and "fd00::2 : jump iso_7" in text
    assert "10.0.0.3 : jump in_2" in text and "10.0.0.4 : jump in_3" in text
    assert "10.0.0.4 : jump out_3" in text and "out_2" not in text
    iso_7 = text.split("chain iso_7 {\n")[1].split("\n  }\n")[0].splitlines()
    assert "nd-neighbor-advert" in iso_7[2]  # neighbour discovery before the tenant drops
    assert iso_7[-2:] == [
        "    ip saddr @vps_4 ip saddr != @t7_4 drop",
        "    ip6 saddr @vps_6 ip6 saddr != @t7_6 drop",
    ]
    assert "ip saddr { 0.0.0.0/0 } tcp dport 22 accept" in text
    assert "ip saddr { 0.0.0.0/0 } meta l4proto icmp accept" in text
    assert "ip daddr { 1.1.1.1/32 } meta l4proto udp return" not in text  # a port was given
    assert "ip daddr { 1.1.1.1/32 } udp dport 80 return" in text
    in_3 = text.split("chain in_3 {\n")[1].split("\n  }\n")[0]
    assert in_3.strip().splitlines()[-1].strip() == "drop"  # a firewall without inbound rules
    assert "ct status dnat tcp dport 22 accept" in in_3  # the SSH forward still works


def test_rule_lines_split_families_and_merge_overlaps() -> None:
    lines = rule_lines(
        rule(protocol="any", port=None, source_ips=["10.0.0.0/8", "10.1.0.0/16", "fd00::/8"]),
        verdict="accept",
    )
    assert lines == ["ip saddr { 10.0.0.0/8 } accept", "ip6 saddr { fd00::/8 } accept"]
    v6_only = rule_lines(
        rule(protocol="icmpv6", port=None, source_ips=["::/0", "0.0.0.0/0"]), verdict="accept"
    )
    assert v6_only == ["ip6 saddr { ::/0 } meta l4proto ipv6-icmp accept"]


def test_api_validates_scopes_and_enforces_firewalls(
    app_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr(enforce, "sync", lambda s: synced.append(s.net_filter_table))
    mine, other = make_tenant(app_env), make_tenant(app_env)
    with session_scope(app_env) as session:
        web = add_server(session, mine, "web", ipv4="10.0.0.2").id
        theirs = add_server(session, other, "x", ipv4="10.0.0.3").id
    client = TestClient(create_app(), raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {tokens.create_token(app_env, name='t', tenant_id=mine)[1]}"}
    auth_other = {
        "Authorization": f"Bearer {tokens.create_token(app_env, name='t', tenant_id=other)[1]}"
    }
    body: dict[str, Any] = {
        "name": "web",
        "labels": {"team": "a"},
        "rules": [
            {"direction": "in", "protocol": "tcp", "port": "80", "source_ips": ["0.0.0.0/0"]}
        ],
        "apply_to": [{"type": "server", "server": {"id": web}}],
    }
    for change, field in (
        ({"rules": [{**body["rules"][0], "port": "99999"}]}, "rules.0.port"),
        ({"rules": [{**body["rules"][0], "source_ips": ["nope"]}]}, "rules.0.source_ips.0"),
        ({"rules": [{**body["rules"][0], "protocol": "gre"}]}, "rules.0.protocol"),
        ({"rules": body["rules"] * (app_env.firewall_max_rules + 1)}, "rules"),
    ):
        r = client.post("/v1/firewalls", json={**body, **change}, headers=auth)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"]["field"] == field
    r = client.post(
        "/v1/firewalls",
        json={**body, "apply_to": [{"type": "server", "server": {"id": theirs}}]},
        headers=auth,
    )
    assert r.status_code == 404 and r.json()["error"]["details"]["field"] == "apply_to.0.server.id"
    assert synced == []  # nothing written, nothing loaded

    r = client.post("/v1/firewalls", json=body, headers=auth)
    assert r.status_code == 201, r.text
    fw = r.json()["firewall"]
    assert fw["applied_to_servers"] == [web] and fw["rules"][0]["port"] == "80"
    assert client.post("/v1/firewalls", json=body, headers=auth).status_code == 409
    assert client.get(f"/v1/firewalls/{fw['id']}", headers=auth_other).status_code == 404
    assert client.delete(f"/v1/firewalls/{fw['id']}", headers=auth_other).status_code == 404
    assert client.get("/v1/firewalls", headers=auth_other).json()["firewalls"] == []

    by_label = {"apply_to": [{"type": "label_selector", "label_selector": {"selector": "env"}}]}
    r = client.put(f"/v1/firewalls/{fw['id']}", json=by_label, headers=auth)
    assert r.status_code == 200 and r.json()["firewall"]["applied_to_servers"] == []
    r = client.put(f"/v1/servers/{web}", json={"labels": {"env": "prod"}}, headers=auth)
    assert r.status_code == 200 and r.json()["server"]["labels"] == {"env": "prod"}
    assert client.get(f"/v1/firewalls/{fw['id']}", headers=auth).json()["firewall"][
        "applied_to_servers"
    ] == [web]
    bad_label = client.put(f"/v1/servers/{web}", json={"labels": {"-x": "1"}}, headers=auth)
    assert bad_label.status_code == 422
    assert client.put(f"/v1/servers/{theirs}", json={"labels": {}}, headers=auth).status_code == 404
    assert client.delete(f"/v1/firewalls/{fw['id']}", headers=auth).status_code == 204
    assert len(synced) == 4  # create, update, labels, delete: each rebuilt the table


def test_operator_cli_lists_and_shows_every_tenants_firewalls(
    app_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(enforce, "sync", lambda s: None)
    mine, other = make_tenant(app_env), make_tenant(app_env)
    with session_scope(app_env) as session:
        web = add_server(session, mine, "web", labels={"env": "prod"}, ipv4="10.0.0.2").id
    made = [
        crud.create_firewall(
            app_env,
            tenant_id=tenant,
            body=FirewallCreate(
                name="fw",
                rules=[FirewallRule(direction="in", protocol="icmp", source_ips=["0.0.0.0/0"])],
                apply_to=[
                    ApplyTo(type="label_selector", label_selector=LabelSelectorRef(selector="env"))
                ],
            ),
        )
        for tenant in (mine, other)
    ]
    runner = CliRunner()
    listed = runner.invoke(cli_app, ["firewall", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(f["id"], f["applied_to_servers"]) for f in json.loads(listed.output)] == [
        (made[0].id, [web]),
        (made[1].id, []),
    ]
    only_other = runner.invoke(cli_app, ["firewall", "list", "--tenant", str(other), "--json"])
    assert [f["id"] for f in json.loads(only_other.output)] == [made[1].id]
    shown = runner.invoke(cli_app, ["firewall", "show", str(made[0].id)])
    assert shown.exit_code == 0 and json.loads(shown.output)["tenant_id"] == mine
    missing = runner.invoke(cli_app, ["firewall", "show", "424242"])
    assert missing.exit_code == 1 and "not found" in missing.output
