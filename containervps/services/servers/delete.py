"""Delete a server: its container, its disk and its snapshots; its quota is freed."""

from __future__ import annotations

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.models import Action, Server, utcnow
from containervps.services.actions.commands import Command
from containervps.services.actions.intake import Accepted, ActionRequest, Prepared, submit
from containervps.services.actions.job import Job
from containervps.services.actions.store import finish
from containervps.services.cluster import routes
from containervps.services.firewalls import enforce
from containervps.services.servers import boundaries
from containervps.services.servers.queries import raise_protected
from containervps.services.servers.snapshots import forget_snapshots
from containervps.services.servers.states import ServerState
from containervps.services.servers.teardown import delete_instance_and_disk

__all__ = ["request_delete", "run"]


def request_delete(
    settings: Settings,
    *,
    tenant_id: int | None,
    server_id: int,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Write a delete action; Forbidden while delete protection is on."""
    request = ActionRequest(
        command=Command.DELETE_SERVER,
        tenant_id=tenant_id,
        server_id=server_id,
        payload={"c": Command.DELETE_SERVER.value, "s": server_id},
        request_id=request_id,
        idempotency_key=idempotency_key,
    )

    def prepare(session: Session, server: Server | None) -> Prepared:
        assert server is not None
        if server.delete_protection:
            raise_protected(server_id, "delete")
        return Prepared()

    return submit(settings, request, prepare)


def run(job: Job) -> Action:
    delete_instance_and_disk(job.settings, job.lxd, job.server)
    forget_snapshots(job.settings, job.server_id)
    boundaries.after(job)  # its IFB goes too
    # Out of the filter table while its row is live: once deleted, its addresses may go to a
    # new server at once, whose entries a late removal would take away.
    enforce.forget(job.settings, job.server_id)
    done = finish(
        job.settings,
        job.action_id,
        server_update={
            "status": ServerState.DELETED,
            "deleted_at": utcnow(),
            "status_detail": None,
        },
    )
    if job.server.member:
        routes.refresh(job.settings)  # and the routes to members
    return done
