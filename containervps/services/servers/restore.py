"""Restore a server's disk from one of its snapshots (an action: it holds the server)."""

from __future__ import annotations

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.models import Action, Server
from containervps.services.actions.commands import Command
from containervps.services.actions.intake import Accepted, ActionRequest, Prepared, submit
from containervps.services.actions.job import Job
from containervps.services.actions.store import finish
from containervps.services.servers import boundaries
from containervps.services.servers.snapshots import available_snapshot

__all__ = ["request_restore", "run"]


def request_restore(
    settings: Settings,
    *,
    server_id: int,
    tenant_id: int | None,
    snapshot_id: int,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Write a restore action; LXD work runs later."""
    request = ActionRequest(
        command=Command.RESTORE_SNAPSHOT,
        tenant_id=tenant_id,
        server_id=server_id,
        payload={"c": "restore", "s": server_id, "n": snapshot_id},
        request_id=request_id,
        idempotency_key=idempotency_key,
    )

    def prepare(session: Session, server: Server | None) -> Prepared:
        assert server is not None
        row = available_snapshot(session, server=server, snapshot_id=snapshot_id)
        return Prepared(params={"snapshot_id": row.id, "snapshot": row.name})

    return submit(settings, request, prepare)


def run(job: Job) -> Action:
    """Put the server's disk back as it was (a running server keeps running)."""
    server = job.server
    job.lxd.snapshots.restore(
        name=server.lxd_name, project=server.lxd_project, snapshot=job.action.params["snapshot"]
    )
    boundaries.after(job)
    return finish(job.settings, job.action_id)
