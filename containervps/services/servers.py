"""Server use cases: validate, admit (quota + capacity), write the intent; list and show."""

from __future__ import annotations

import re

from sqlalchemy import func
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, Image, Quota, Server, Tenant
from containervps.errors import Conflict, Forbidden, InvalidInput, Locked, NotFound
from containervps.lxd import Lxd
from containervps.services import access, capacity
from containervps.services.actions import PASSWORD_HASH, POWER_COMMANDS
from containervps.services.capabilities import egress_support
from containervps.services.idempotency import Accepted, accept, replay, request_hash
from containervps.services.plans import get_plan, plan_limits
from containervps.services.ssh_keys import resolve_keys

__all__ = [
    "Accepted",
    "create_server",
    "ensure_idle",
    "get_server",
    "list_servers",
    "live_server",
    "raise_protected",
    "replay",
    "request_action",
    "request_hash",
    "validate_labels",
    "validate_name",
]

HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9._-]{0,63}$")
MAX_LABELS = 32
LIVE = col(Server.deleted_at).is_(None)


def validate_name(name: str) -> None:
    """Hostname rules: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'."""
    if not HOSTNAME.match(name):
        raise InvalidInput(
            f"invalid server name {name!r}: 1-63 characters of a-z, 0-9 and '-', "
            "not starting or ending with '-'",
            details={"field": "name", "value": name[:100]},
        )


def validate_labels(labels: dict[str, str]) -> None:
    """Label keys like hostnames (plus . _ /), values up to 63 of [A-Za-z0-9._-]."""
    if len(labels) > MAX_LABELS:
        raise InvalidInput(f"at most {MAX_LABELS} labels", details={"field": "labels"})
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY.match(key):
            raise InvalidInput(f"invalid label key {key!r}", details={"field": "labels"})
        if not isinstance(value, str) or not LABEL_VALUE.match(value):
            raise InvalidInput(f"invalid label value {value!r}", details={"field": "labels"})


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
    rhash = request_hash(
        {"c": "create", "n": name, "p": plan, "i": image, "l": labels, "k": key_lines}
    )
    with session_scope(settings) as session:
        earlier = replay(session, tenant_id=tenant_id, key=idempotency_key, request_hash=rhash)
        if earlier:
            return earlier
    # LXD facts first, outside the write lock (cached). Callers pass a connected client, so
    # LXD answered moments ago: when it is down, the 503 comes before anything is written.
    host = capacity.host_capacity(settings, lxd)
    egress = egress_support(settings, lxd)
    password, password_hash = (None, None) if key_lines else access.new_root_password(settings)
    with session_scope(settings, immediate=True) as session:
        earlier = replay(session, tenant_id=tenant_id, key=idempotency_key, request_hash=rhash)
        if earlier:
            return earlier
        tenant = session.get(Tenant, tenant_id)
        quota = session.get(Quota, tenant_id)
        if tenant is None or quota is None or tenant.deleted_at is not None:
            raise NotFound(f"tenant {tenant_id} not found")
        the_plan = get_plan(session, plan)
        if session.get(Image, image) is None:
            raise InvalidInput(
                f"unknown image {image!r}", details={"field": "image", "value": image}
            )
        if session.exec(
            select(Server.id).where(Server.tenant_id == tenant_id, Server.name == name, LIVE)
        ).first():
            raise Conflict(f"a server named {name!r} already exists", details={"field": "name"})
        capacity.admit(
            session,
            tenant_id=tenant_id,
            quota=quota,
            capacity=host,
            want=capacity.Request(
                vcpus=the_plan.vcpus,
                memory_mib=the_plan.memory_mib,
                disk_gib=the_plan.disk_gib,
                processes=the_plan.max_processes,
            ),
        )
        server = Server(
            tenant_id=tenant_id,
            name=name,
            plan=the_plan.name,
            image=image,
            status="initializing",
            labels=labels,
            lxd_project=tenant.lxd_project,
            lxd_name=name,
            vcpus=the_plan.vcpus,
            memory_mib=the_plan.memory_mib,
            disk_gib=the_plan.disk_gib,
            processes=the_plan.max_processes,
            limits=plan_limits(
                the_plan, egress_enforced=egress.enforced, egress_reason=egress.reason
            ),
            ssh_port=access.allocate_ssh_port(session, settings),
            ssh_keys=key_lines,
        )
        session.add(server)
        session.flush()
        accepted = accept(
            session,
            server,
            "create_server",
            request_id=request_id,
            key=idempotency_key,
            request_hash=rhash,
            params={PASSWORD_HASH: password_hash} if password_hash else {},
            root_password=password,
        )
    return accepted


def ensure_idle(session: Session, server_id: int) -> None:
    """Locked while another action runs on the server."""
    busy = session.exec(
        select(Action).where(Action.server_id == server_id, Action.status == "running")
    ).first()
    if busy is not None:
        raise Locked(
            f"server {server_id} is locked by running action {busy.id} ({busy.command})",
            details={"action_id": busy.id, "command": busy.command},
            resolution="wait for that action (GET /v1/actions/{id}) and retry",
        )


def raise_protected(server_id: int, what: str) -> None:
    """Refuse an action that the server's protection flag forbids."""
    raise Forbidden(
        f"server {server_id} is protected against {what}",
        details={"protection": what},
        resolution=f"turn off {what} protection first (actions/change_protection)",
    )


def live_server(session: Session, *, server_id: int, tenant_id: int | None) -> Server:
    """A live server in this session (another tenant's id is NotFound)."""
    server = session.get(Server, server_id)
    if server is None or server.deleted_at is not None:
        raise NotFound(f"server {server_id} not found")
    if tenant_id is not None and server.tenant_id != tenant_id:
        raise NotFound(f"server {server_id} not found")
    return server


def request_action(
    settings: Settings,
    *,
    tenant_id: int | None,
    server_id: int,
    command: str,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Write a power or delete action for a server; Locked while another action runs."""
    if command not in POWER_COMMANDS and command != "delete_server":
        raise InvalidInput(f"unknown action {command!r}", details={"allowed": [*POWER_COMMANDS]})
    rhash = request_hash({"c": command, "s": server_id})
    with session_scope(settings, immediate=True) as session:
        server = live_server(session, server_id=server_id, tenant_id=tenant_id)
        owner = server.tenant_id
        earlier = replay(session, tenant_id=owner, key=idempotency_key, request_hash=rhash)
        if earlier:
            return earlier
        ensure_idle(session, server_id)
        if command == "delete_server" and server.delete_protection:
            raise_protected(server_id, "delete")
        if command != "delete_server" and server.status in ("missing", "error"):
            raise Conflict(
                f"server {server_id} is {server.status}: {server.status_detail or ''}".rstrip(": "),
                resolution="delete it",
            )
        server.status = "deleting" if command == "delete_server" else POWER_COMMANDS[command][0]
        session.add(server)
        return accept(
            session,
            server,
            command,
            request_id=request_id,
            key=idempotency_key,
            request_hash=rhash,
        )


def get_server(settings: Settings, *, server_id: int, tenant_id: int | None) -> Server:
    """A live server; another tenant's id is NotFound (``tenant_id`` None: admin)."""
    with session_scope(settings) as session:
        return live_server(session, server_id=server_id, tenant_id=tenant_id)


def find_server(settings: Settings, *, ref: str, tenant_id: int | None) -> Server:
    """A live server by id or (within a tenant) by name (CLI convenience)."""
    if ref.isdigit():
        return get_server(settings, server_id=int(ref), tenant_id=tenant_id)
    with session_scope(settings) as session:
        query = select(Server).where(Server.name == ref, LIVE)
        if tenant_id is not None:
            query = query.where(Server.tenant_id == tenant_id)
        rows = session.exec(query).all()
    if len(rows) != 1:
        what = "not found" if not rows else "is ambiguous: pass --tenant or the id"
        raise NotFound(f"server {ref!r} {what}")
    return rows[0]


def list_servers(
    settings: Settings,
    *,
    tenant_id: int | None,
    status: str | None = None,
    label_selector: str | None = None,
    name: str | None = None,
    page: int = 1,
    per_page: int = 25,
) -> tuple[list[Server], int]:
    """One page of live servers (and the total), filtered by status, name and labels.

    ``label_selector`` is ``key=value`` or ``key`` (has the label), comma-separated.
    """
    query = select(Server).where(LIVE)
    if tenant_id is not None:
        query = query.where(Server.tenant_id == tenant_id)
    if status:
        query = query.where(Server.status == status)
    if name:
        query = query.where(Server.name == name)
    for term in filter(None, (label_selector or "").split(",")):
        key, eq, value = term.strip().partition("=")
        if not LABEL_KEY.match(key) or (eq and not LABEL_VALUE.match(value)):
            raise InvalidInput(
                f"invalid label selector {term!r}", details={"field": "label_selector"}
            )
        # The key is validated above, so quoting it into the JSON path is safe.
        extracted = func.json_extract(Server.labels, f'$."{key}"')
        query = query.where(extracted == value if eq else extracted.is_not(None))
    with session_scope(settings) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(Server.id)).offset((page - 1) * per_page).limit(per_page)
        ).all()
        return list(rows), int(total)
