"""Plans: the catalogue of server sizes."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Plan
from containervps.errors import Conflict, InvalidInput
from containervps.schemas.plan import PLAN_NUMBERS, PlanCreate

__all__ = ["create_plan", "get_plan", "list_plans"]

PLAN_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def list_plans(settings: Settings) -> list[Plan]:
    """Every plan, smallest first."""
    with session_scope(settings) as session:
        query = select(Plan).order_by(col(Plan.vcpus), col(Plan.memory_mib), col(Plan.name))
        return list(session.exec(query).all())


def get_plan(session: Session, name: str) -> Plan:
    """The plan called ``name``, or InvalidInput."""
    plan = session.get(Plan, name)
    if plan is None:
        raise InvalidInput(f"unknown plan {name!r}", details={"field": "plan", "value": name})
    return plan


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
