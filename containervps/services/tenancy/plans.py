"""Plans: the catalogue of server sizes."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Plan, utcnow
from containervps.errors import Conflict, InvalidInput, NotFound
from containervps.schemas.common import timestamp
from containervps.schemas.plan import PLAN_NUMBERS, PlanCreate

__all__ = ["create_plan", "get_plan", "list_plans", "retire_plan", "unretire_plan"]

PLAN_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def list_plans(settings: Settings, *, include_retired: bool = False) -> list[Plan]:
    """The catalogue, smallest first; retired plans too when asked (admins see them)."""
    with session_scope(settings) as session:
        query = select(Plan).order_by(col(Plan.vcpus), col(Plan.memory_mib), col(Plan.name))
        if not include_retired:
            query = query.where(col(Plan.retired_at).is_(None))
        return list(session.exec(query).all())


def get_plan(session: Session, name: str) -> Plan:
    """The plan called ``name`` for a new server or a resize; InvalidInput if unknown or retired."""
    plan = session.get(Plan, name)
    if plan is None:
        raise InvalidInput(f"unknown plan {name!r}", details={"field": "plan", "value": name})
    if plan.retired_at is not None:
        raise InvalidInput(
            f"plan {name!r} is retired: new servers and resizes cannot use it",
            details={"field": "plan", "value": name, "retired": timestamp(plan.retired_at)},
            resolution="pick a plan from GET /v1/plans",
        )
    return plan


def _set_retired(settings: Settings, *, name: str, retired: bool) -> Plan:
    with session_scope(settings, immediate=True) as session:
        plan = session.get(Plan, name)
        if plan is None:
            raise NotFound(f"plan {name!r} not found", details={"plan": name})
        if not retired:
            plan.retired_at = None
        elif plan.retired_at is None:  # retiring again keeps the first date
            plan.retired_at = utcnow()
        session.add(plan)
        return plan


def retire_plan(settings: Settings, *, name: str) -> Plan:
    """Take a plan out of the catalogue: no new servers or resizes; servers on it keep it."""
    return _set_retired(settings, name=name, retired=True)


def unretire_plan(settings: Settings, *, name: str) -> Plan:
    """Put a retired plan back into the catalogue."""
    return _set_retired(settings, name=name, retired=False)


def create_plan(settings: Settings, spec: PlanCreate) -> Plan:
    """Add a plan to the catalogue."""
    if not PLAN_NAME.match(spec.name):
        raise InvalidInput(f"invalid plan name {spec.name!r}", details={"field": "name"})
    bad = [k for k in PLAN_NUMBERS if getattr(spec, k) < 1]
    if bad:
        raise InvalidInput(f"plan values must be >= 1: {', '.join(bad)}", details={"fields": bad})
    with session_scope(settings, immediate=True) as session:
        if session.get(Plan, spec.name) is not None:
            raise Conflict(f"plan {spec.name!r} already exists")
        plan = Plan(**spec.model_dump())
        session.add(plan)
        return plan
