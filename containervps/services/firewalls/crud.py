"""Firewall use cases: create, list, show, update, delete; each write rebuilds the filter table.

A firewall belongs to one tenant: another tenant's firewall ids answer NotFound, and its
``apply_to`` may name only the tenant's own live servers (another tenant's id is NotFound too).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Firewall, Server
from containervps.errors import Conflict, NotFound
from containervps.schemas.firewall import FirewallCreate, FirewallPublic, FirewallUpdate
from containervps.services.firewalls import enforce
from containervps.services.firewalls.rules import check_rules, check_targets
from containervps.services.servers.queries import LIVE, validate_labels

__all__ = [
    "create_firewall",
    "delete_firewall",
    "get_firewall",
    "list_firewalls",
    "public",
    "update_firewall",
]


def _checked_targets(
    session: Session, apply_to: list[dict[str, Any]], *, tenant_id: int
) -> list[dict[str, Any]]:
    targets = check_targets(apply_to)
    for i, target in enumerate(targets):
        if target["type"] != "server":
            continue
        server = session.get(Server, target["server"]["id"])
        if server is None or server.deleted_at is not None or server.tenant_id != tenant_id:
            raise NotFound(
                f"apply_to.{i}.server.id: server {target['server']['id']} not found",
                details={"field": f"apply_to.{i}.server.id"},
            )
    return targets


def _name_free(session: Session, *, tenant_id: int, name: str, firewall_id: int | None) -> None:
    query = select(Firewall.id).where(Firewall.tenant_id == tenant_id, Firewall.name == name)
    found = session.exec(query).first()
    if found is not None and found != firewall_id:
        raise Conflict(f"a firewall named {name!r} already exists", details={"field": "name"})


def _own(session: Session, *, tenant_id: int | None, firewall_id: int) -> Firewall:
    firewall = session.get(Firewall, firewall_id)
    if firewall is None or (tenant_id is not None and firewall.tenant_id != tenant_id):
        raise NotFound(f"firewall {firewall_id} not found")
    return firewall


def public(settings: Settings, firewalls: list[Firewall]) -> list[FirewallPublic]:
    """The public objects, with the servers each applies to now."""
    tenants = {fw.tenant_id for fw in firewalls}
    with session_scope(settings) as session:
        servers = list(
            session.exec(select(Server).where(LIVE, col(Server.tenant_id).in_(tenants))).all()
        )
    applied = enforce.applied(firewalls, servers)
    return [FirewallPublic.of(fw, servers=applied[fw.id or 0]) for fw in firewalls]


def create_firewall(settings: Settings, *, tenant_id: int, body: FirewallCreate) -> Firewall:
    """Store a validated firewall and enforce it."""
    validate_labels(body.labels)
    rules = check_rules([r.model_dump() for r in body.rules], max_rules=settings.firewall_max_rules)
    with session_scope(settings, immediate=True) as session:
        _name_free(session, tenant_id=tenant_id, name=body.name, firewall_id=None)
        firewall = Firewall(
            tenant_id=tenant_id,
            name=body.name,
            labels=body.labels,
            rules=rules,
            apply_to=_checked_targets(
                session, [t.model_dump() for t in body.apply_to], tenant_id=tenant_id
            ),
        )
        session.add(firewall)
    enforce.sync(settings)
    return firewall


def update_firewall(
    settings: Settings, *, tenant_id: int | None, firewall_id: int, body: FirewallUpdate
) -> Firewall:
    """Replace the fields given (name, labels, rules, apply_to) and enforce the result."""
    if body.labels is not None:
        validate_labels(body.labels)
    rules = (
        None
        if body.rules is None
        else check_rules(
            [r.model_dump() for r in body.rules], max_rules=settings.firewall_max_rules
        )
    )
    with session_scope(settings, immediate=True) as session:
        firewall = _own(session, tenant_id=tenant_id, firewall_id=firewall_id)
        if body.name is not None:
            _name_free(
                session, tenant_id=firewall.tenant_id, name=body.name, firewall_id=firewall_id
            )
            firewall.name = body.name
        if body.labels is not None:
            firewall.labels = body.labels
        if rules is not None:
            firewall.rules = rules
        if body.apply_to is not None:
            firewall.apply_to = _checked_targets(
                session, [t.model_dump() for t in body.apply_to], tenant_id=firewall.tenant_id
            )
        session.add(firewall)
    enforce.sync(settings)
    return firewall


def delete_firewall(settings: Settings, *, tenant_id: int | None, firewall_id: int) -> None:
    """Forget a firewall; the servers it applied to fall back to what else applies."""
    with session_scope(settings, immediate=True) as session:
        session.delete(_own(session, tenant_id=tenant_id, firewall_id=firewall_id))
    enforce.sync(settings)


def get_firewall(settings: Settings, *, tenant_id: int | None, firewall_id: int) -> Firewall:
    """One firewall (``tenant_id`` None: any tenant's, for the operator)."""
    with session_scope(settings) as session:
        return _own(session, tenant_id=tenant_id, firewall_id=firewall_id)


def list_firewalls(
    settings: Settings, *, tenant_id: int | None, page: int = 1, per_page: int = 100
) -> tuple[list[Firewall], int]:
    """One page of firewalls (and the total), of one tenant or all of them."""
    query = select(Firewall)
    if tenant_id is not None:
        query = query.where(Firewall.tenant_id == tenant_id)
    with session_scope(settings) as session:
        total = session.exec(select(func.count()).select_from(query.subquery())).one()
        rows = session.exec(
            query.order_by(col(Firewall.id)).offset((page - 1) * per_page).limit(per_page)
        ).all()
    return list(rows), int(total)
