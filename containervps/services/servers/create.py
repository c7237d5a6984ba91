"""Create a server: validate, admit against quota and host capacity, give it an address and
an SSH port, write the intent; then make its container and start it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlmodel import Session, select

from containervps.config import Settings
from containervps.db.models import Action, Image, Quota, Server, Tenant
from containervps.errors import Conflict, InvalidInput, NotFound
from containervps.lxd import Lxd, group_project
from containervps.services.actions.commands import PASSWORD_HASH, Command
from containervps.services.actions.intake import Accepted, ActionRequest, Prepared, replayed, submit
from containervps.services.actions.job import Job
from containervps.services.actions.store import finish, set_progress
from containervps.services.capacity import admission
from containervps.services.cluster import members, placement
from containervps.services.host.capabilities import EgressSupport, egress_support
from containervps.services.servers import (
    access,
    addresses,
    boundaries,
    disks,
    on_member,
    provision,
)
from containervps.services.servers.bandwidth import bandwidth_support
from containervps.services.servers.limits import reserve
from containervps.services.servers.queries import LIVE, validate_labels, validate_name
from containervps.services.servers.states import ServerState
from containervps.services.servers.teardown import is_ours
from containervps.services.tenancy.plans import get_plan
from containervps.services.tenancy.ssh_keys import resolve_keys

__all__ = ["create_server", "run"]


def create_server(
    settings: Settings,
    lxd: Lxd,
    *,
    tenant_id: int,
    name: str,
    plan: str,
    image: str,
    labels: dict[str, str] | None = None,
    ssh_keys: list[str | int] | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Admit a new server and write it with its create action; the LXD work runs later.

    Without SSH keys a root password is generated and returned once (never stored).
    """
    labels = dict(labels or {})
    validate_name(name)
    validate_labels(labels)
    key_lines = resolve_keys(settings, tenant_id=tenant_id, refs=list(ssh_keys or []))
    request = ActionRequest(
        command=Command.CREATE_SERVER,
        tenant_id=tenant_id,
        payload={"c": "create", "n": name, "p": plan, "i": image, "l": labels, "k": key_lines},
        request_id=request_id,
        idempotency_key=idempotency_key,
    )
    earlier = replayed(settings, request)
    if earlier:
        return earlier
    # LXD facts first, outside the write lock (cached). Callers pass a connected client, so
    # LXD answered moments ago: when it is down, the 503 comes before anything is written.
    # With cluster members recorded, placement checks each member's capacity instead and the
    # host's egress mechanism does not apply (members are never removed, so the placement
    # inside the transaction finds them too).
    clustered = members.any_recorded(settings)
    host = None if clustered else admission.host_capacity(settings, lxd)
    egress = None if clustered else egress_support(settings, lxd)
    password, password_hash = (None, None) if key_lines else access.new_root_password(settings)

    new = NewServer(
        tenant_id=tenant_id, name=name, plan=plan, image=image, labels=labels, key_lines=key_lines
    )

    def prepare(session: Session, _: Server | None) -> Prepared:
        server = _admit(session, settings, new, host=host, egress=egress)
        params = {PASSWORD_HASH: password_hash} if password_hash else {}
        return Prepared(server=server, params=params, root_password=password)

    return submit(settings, request, prepare)


@dataclass(frozen=True)
class NewServer:
    """What a create asks for, validated outside the write lock."""

    tenant_id: int
    name: str
    plan: str
    image: str
    labels: dict[str, str]
    key_lines: list[str]


def _admit(
    session: Session,
    settings: Settings,
    new: NewServer,
    *,
    host: admission.HostCapacity | None,
    egress: EgressSupport | None,
) -> Server:
    """The new server's row, once its tenant, plan, image and name check out and quota and
    host capacity admit its plan (inside the create's BEGIN IMMEDIATE); with cluster members
    recorded, on the member placement picks in the same transaction."""
    tenant, quota = session.get(Tenant, new.tenant_id), session.get(Quota, new.tenant_id)
    if tenant is None or quota is None or tenant.deleted_at is not None:
        raise NotFound(f"tenant {new.tenant_id} not found")
    the_plan = get_plan(session, new.plan)
    _check_new(session, tenant_id=new.tenant_id, name=new.name, image=new.image)
    want, want_iops = admission.reservation(the_plan), admission.Iops.of(the_plan)
    admission.admit_quota(session, tenant_id=new.tenant_id, quota=quota, want=want)
    member = placement.place(session, settings, want=want, want_iops=want_iops)
    if member is None:
        assert host is not None and egress is not None  # read whenever no member was recorded
        admission.admit_host(session, capacity=host, want=want, want_iops=want_iops)
        bandwidth = bandwidth_support(settings)
    else:
        egress = on_member.egress_on_member(member)
        bandwidth = on_member.bandwidth_on_member(member)
    server = Server(
        tenant_id=new.tenant_id,
        name=new.name,
        plan=the_plan.name,
        image=new.image,
        status=ServerState.INITIALIZING,
        labels=new.labels,
        lxd_project=_project_with_room(session, settings, tenant),
        lxd_name=new.name,
        vcpus=0,
        memory_mib=0,
        disk_gib=0,
        processes=0,
        # on a member too: its address is routed to the member (services/cluster/routes.py)
        ssh_port=access.allocate_ssh_port(session, settings),
        ipv4=addresses.allocate_ipv4(session, settings),
        ipv6=addresses.allocate_ipv6(session, settings),
        ssh_keys=new.key_lines,
        member=member,
    )
    reserve(
        server,
        the_plan,
        egress=egress,
        bandwidth=bandwidth,
        throttle_mbit=settings.transfer_throttle_mbit or None,
    )
    return server


def _project_with_room(session: Session, settings: Settings, tenant: Tenant) -> str:
    """The tenant's first project holding fewer than ``servers_per_project`` live servers
    (projects.py says why servers are grouped)."""
    held = Counter(
        session.exec(select(Server.lxd_project).where(Server.tenant_id == tenant.id, LIVE)).all()
    )
    group = 0
    while held[group_project(tenant.lxd_project, group)] >= settings.servers_per_project:
        group += 1
    return group_project(tenant.lxd_project, group)


def _check_new(session: Session, *, tenant_id: int, name: str, image: str) -> None:
    if session.get(Image, image) is None:
        raise InvalidInput(f"unknown image {image!r}", details={"field": "image", "value": image})
    if session.exec(
        select(Server.id).where(Server.tenant_id == tenant_id, Server.name == name, LIVE)
    ).first():
        raise Conflict(f"a server named {name!r} already exists", details={"field": "name"})


def run(job: Job) -> Action:
    """Make the container (or pick up one a killed process left), start it, record it."""
    name, project = job.server.lxd_name, job.server.lxd_project
    mine = is_ours(job.lxd, job.server) if job.resume else None
    if mine is False:
        raise Conflict(f"LXD already has an instance {name} in {project} that is not ours")
    if mine is None:
        status = provision.create_instance(job, image=job.server.image)
    else:
        # A create interrupted by a killed process may still be running inside LXD.
        job.lxd.operations.wait_idle(name=name, project=project)
        disks.drop_image_copies(job.lxd, job.server)
        status = job.lxd.instances.get(name=name, project=project).status
    set_progress(job.settings, job.action_id, 60)
    server_update = provision.bring_up(job, status=status)
    boundaries.after(job)
    return finish(job.settings, job.action_id, server_update=server_update)
