"""An action resumed after its process died tells the tenant what became of it (an event);
one run by the process that accepted it does not."""

from __future__ import annotations

from typing import Any

import pytest

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action
from containervps.errors import LxdError
from containervps.services import events
from containervps.services.actions import runner
from containervps.services.actions.commands import Command
from containervps.services.actions.job import Job
from containervps.services.actions.store import finish
from tests.unit.fakes import add_server, make_tenant


class _GoneInstances:
    def get(self, **_: Any) -> None:
        raise LxdError("LXD did not answer")


class _Lxd:
    instances = _GoneInstances()


def _action(settings: Settings, command: Command) -> tuple[int, int]:
    tenant = make_tenant(settings)
    with session_scope(settings) as session:
        server = add_server(session, tenant, f"s-{command.value[:8]}")
        action = Action(tenant_id=tenant, server_id=server.id, command=command.value)
        session.add(action)
        session.flush()
        assert server.id is not None and action.id is not None
        return server.id, action.id


def _succeed(job: Job) -> Action:
    return finish(job.settings, job.action_id)


def _fail(job: Job) -> Action:
    raise LxdError("the disk would not shrink")


@pytest.mark.parametrize(
    ("command", "run", "kind", "words"),
    [
        (Command.RESIZE_SERVER, _succeed, "server.action_finished", "it was finished"),
        (Command.RESIZE_SERVER, _fail, "server.action_rolled_back", "rolled back: the disk"),
        (Command.RESTORE_SNAPSHOT, _fail, "server.action_rolled_back", "rolled back: the disk"),
        (Command.REBUILD_SERVER, _fail, "server.action_failed", "resuming it failed: the disk"),
    ],
)
def test_a_resumed_action_leaves_an_event_saying_what_became_of_it(
    db: Settings, monkeypatch: pytest.MonkeyPatch, command: Command, run: Any, kind: str, words: str
) -> None:
    monkeypatch.setitem(runner.RUNNERS, command, run)
    server_id, action_id = _action(db, command)
    done = runner.run_action(db, action_id, lxd=_Lxd(), resume=True)  # type: ignore[arg-type]
    assert done.status == ("success" if run is _succeed else "error")
    listed, total = events.list_events(db, tenant_id=None, server_id=server_id)
    assert total == 1 and listed[0].type == kind
    assert "interrupted" in listed[0].message and words in listed[0].message
    assert listed[0].details == {"action_id": action_id, "command": command.value}


def test_an_action_run_by_its_own_process_leaves_no_event(
    db: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(runner.RUNNERS, Command.RESIZE_SERVER, _fail)
    server_id, action_id = _action(db, Command.RESIZE_SERVER)
    assert runner.run_action(db, action_id, lxd=_Lxd(), resume=False).status == "error"  # type: ignore[arg-type]
    assert events.list_events(db, tenant_id=None, server_id=server_id)[1] == 0
