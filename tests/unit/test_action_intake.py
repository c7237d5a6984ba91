"""Action intake: Idempotency-Key replay, the server lock, tenant scoping, waiting on an
action and the liveness of the process that runs it."""

from __future__ import annotations

import threading
import time
from functools import partial

import anyio
import pytest

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action
from containervps.errors import Conflict, InvalidInput, Locked, NotFound
from containervps.services.actions import store
from containervps.services.actions.commands import PASSWORD_HASH
from containervps.services.servers import power
from tests.unit.fakes import create, make_tenant


def test_idempotency_key_replays_and_rejects_a_different_request(db: Settings) -> None:
    tenant_id = make_tenant(db)
    first = create(db, tenant_id, "one", idempotency_key="k1")
    again = create(db, tenant_id, "one", idempotency_key="k1")
    assert again.replayed and (again.server.id, again.action.id) == (
        first.server.id,
        first.action.id,
    )
    with pytest.raises(Conflict):
        create(db, tenant_id, "two", idempotency_key="k1")
    with pytest.raises(Conflict):
        create(db, tenant_id, "one")  # the name is taken


def test_a_replayed_keyless_create_shows_the_same_root_password_stored_nowhere(
    db: Settings,
) -> None:
    tenant_id = make_tenant(db)
    first = create(db, tenant_id, "pw", idempotency_key="replay-key-1")
    again = create(db, tenant_id, "pw", idempotency_key="replay-key-1")
    assert first.root_password and again.replayed
    assert again.root_password == first.root_password
    raw = (db.data_dir / "containervps.db").read_bytes()
    raw += (db.data_dir / "containervps.db-wal").read_bytes()
    assert first.root_password.encode() not in raw
    assert b"replay-key-1" not in raw  # only the key's digest is kept


def test_a_finished_create_leaves_no_password_hash_in_the_database_or_its_log(
    db: Settings,
) -> None:
    accepted = create(db, make_tenant(db), "hash")
    hashed = accepted.action.params[PASSWORD_HASH]
    files = [db.data_dir / "containervps.db", db.data_dir / "containervps.db-wal"]
    assert hashed.encode() in b"".join(f.read_bytes() for f in files)  # held while running
    store.finish(db, accepted.action.id or 0, server_update={"status": "running"})
    assert hashed.encode() not in b"".join(f.read_bytes() for f in files if f.exists())


def test_actions_lock_and_tenant_scoping(db: Settings) -> None:
    tenant_id, other = make_tenant(db), make_tenant(db)
    accepted = create(db, tenant_id, "box")
    sid = accepted.server.id or 0
    with pytest.raises(Locked) as locked:
        power.request_power(db, tenant_id=tenant_id, server_id=sid, command="reboot")
    assert locked.value.details["action_id"] == accepted.action.id
    with pytest.raises(NotFound):
        power.request_power(db, tenant_id=other, server_id=sid, command="reboot")
    with pytest.raises(NotFound):
        store.get_action(db, action_id=accepted.action.id or 0, tenant_id=other)
    store.finish(db, accepted.action.id or 0, server_update={"status": "running"})
    reboot = power.request_power(db, tenant_id=tenant_id, server_id=sid, command="reboot")
    assert reboot.server.status == "rebooting"
    with pytest.raises(InvalidInput):
        power.request_power(db, tenant_id=tenant_id, server_id=sid, command="explode")


def test_wait_action_sees_the_finish(db: Settings) -> None:
    tenant_id = make_tenant(db)
    accepted = create(db, tenant_id, "w")
    aid = accepted.action.id or 0
    threading.Timer(0.2, lambda: store.finish(db, aid, error=("lxd_error", "boom"))).start()
    started = time.monotonic()
    wait = partial(store.wait_action, db, action_id=aid, tenant_id=tenant_id, timeout=5)
    done = anyio.run(wait)
    assert done.status == "error" and done.error_code == "lxd_error"
    assert time.monotonic() - started < 2.0  # polled every 0.25 s, not the 5 s timeout
    running = create(db, tenant_id, "w2").action.id or 0
    started = time.monotonic()
    wait = partial(store.wait_action, db, action_id=running, tenant_id=tenant_id, timeout=0.5)
    assert anyio.run(wait).status == "running"  # the wait ends, the action does not
    assert time.monotonic() - started >= 0.5
    with session_scope(db) as session:
        action = session.get(Action, aid)
        assert action is not None and action.finished is not None


def test_runner_liveness() -> None:
    me = store.this_runner()
    assert store.runner_alive(me)
    pid, started = me.split(":")
    assert not store.runner_alive(f"{pid}:{started}0")
    assert not store.runner_alive(None) and not store.runner_alive("garbage")
