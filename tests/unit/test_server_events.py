"""Server events: recorded by services, listed newest first, each tenant seeing only its own."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from containervps.api.app import create_app
from containervps.cli import app as cli_app
from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Event, utcnow
from containervps.services import events
from containervps.services.events import EventType
from containervps.services.metering import rollups
from containervps.services.tenancy import tokens
from tests.unit.fakes import add_server, make_tenant


def test_events_are_listed_newest_first_and_only_to_their_tenant(app_env: Settings) -> None:
    mine, other = make_tenant(app_env), make_tenant(app_env)
    with session_scope(app_env) as session:
        a = add_server(session, mine, "a").id
        b = add_server(session, mine, "b").id
        theirs = add_server(session, other, "c").id
    assert a is not None and b is not None and theirs is not None
    events.record(
        app_env, server_id=a, type=EventType.OOM_KILL, message="first", severity="warning"
    )
    events.record(app_env, server_id=b, type=EventType.LXCFS_REPAIRED, message="second")
    events.record(
        app_env,
        server_id=a,
        type=EventType.RESTORE_ROLLED_BACK,
        message="third",
        details={"snapshot": "s1"},
    )
    events.record(app_env, server_id=theirs, type=EventType.OOM_KILL, message="not yours")
    _, secret = tokens.create_token(app_env, name="t", tenant_id=mine)
    auth = {"Authorization": f"Bearer {secret}"}
    client = TestClient(create_app(), raise_server_exceptions=False)

    listed = client.get("/v1/events", headers=auth)
    assert listed.status_code == 200
    assert [e["message"] for e in listed.json()["events"]] == ["third", "second", "first"]
    assert listed.json()["meta"]["pagination"]["total_entries"] == 3
    third = listed.json()["events"][0]
    assert third["type"] == "server.restore_rolled_back" and third["server"] == a
    assert third["details"] == {"snapshot": "s1"} and third["created"].endswith("Z")

    on_a = client.get(f"/v1/servers/{a}/events", headers=auth).json()["events"]
    assert [e["message"] for e in on_a] == ["third", "first"]
    ooms = client.get("/v1/events", params={"type": "server.oom_kill"}, headers=auth).json()
    assert [e["message"] for e in ooms["events"]] == ["first"]
    paged = client.get("/v1/events", params={"per_page": 1, "page": 2}, headers=auth).json()
    assert [e["message"] for e in paged["events"]] == ["second"]

    assert client.get(f"/v1/servers/{theirs}/events", headers=auth).status_code == 404
    assert client.get("/v1/events", params={"server_id": theirs}, headers=auth).status_code == 404
    bad = client.get("/v1/events", params={"type": "no.such"}, headers=auth)
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "query.type"


def test_an_event_for_a_vanished_server_is_dropped_not_raised(db: Settings) -> None:
    events.record(db, server_id=424242, type=EventType.OOM_KILL, message="gone")
    rows, total = events.list_events(db, tenant_id=None)
    assert rows == [] and total == 0


def test_events_past_their_retention_are_pruned_by_the_compaction_pass(db: Settings) -> None:
    tenant_id = make_tenant(db)
    with session_scope(db) as session:
        server_id = add_server(session, tenant_id, "s").id
    assert server_id is not None
    events.record(db, server_id=server_id, type=EventType.OOM_KILL, message="old")
    events.record(db, server_id=server_id, type=EventType.OOM_KILL, message="new")
    with session_scope(db) as session:
        old = session.exec(select(Event).where(Event.message == "old")).one()
        old.at = utcnow() - timedelta(days=db.events_retention_days + 1)
        session.add(old)
    assert rollups.compact(db).events_pruned == 1
    rows, _ = events.list_events(db, tenant_id=tenant_id)
    assert [e.message for e in rows] == ["new"]


def test_the_cli_shows_a_servers_events(app_env: Settings) -> None:
    tenant_id = make_tenant(app_env)
    with session_scope(app_env) as session:
        server_id = add_server(session, tenant_id, "s").id
    assert server_id is not None
    events.record(app_env, server_id=server_id, type=EventType.OOM_KILL, message="killed")
    shown = CliRunner().invoke(cli_app, ["server", "events", str(server_id), "--json"])
    assert shown.exit_code == 0, shown.output
    (event,) = json.loads(shown.stdout)
    assert (event["type"], event["message"]) == ("server.oom_kill", "killed")
