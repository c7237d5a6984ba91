"""`containervps plan ...`: the plan catalogue."""

from __future__ import annotations

from typing import Any

import typer

from containervps.cli import common
from containervps.cli.model_options import model_options
from containervps.schemas.common import build
from containervps.schemas.plan import PLAN_NUMBERS, PlanCreate, PlanPublic
from containervps.services.tenancy import audit, plans
from containervps.services.tenancy.tokens import CLI_ACTOR

app = typer.Typer(help="Server plans (sizes and limits).", no_args_is_help=True)

COLUMNS = ["name", *PLAN_NUMBERS, "retired"]


@app.command("list")
def list_(json_out: bool = common.JsonOption) -> None:
    """Every plan, retired ones too (tenants see only the others)."""
    listing = plans.list_plans(common.settings(), include_retired=True)
    rows = [PlanPublic.of(r).model_dump() for r in listing]
    if json_out:
        common.print_json(rows)
        return
    common.print_table("plans", COLUMNS, [[r[c] for c in COLUMNS] for r in rows])


@app.command("create")
@model_options(PlanCreate, into="fields", required=True, exclude={"name"})
def create(name: str, fields: dict[str, Any]) -> None:
    """Add a plan."""
    s = common.settings()
    spec = build(PlanCreate, name=name, **fields)
    with audit.audited(s, actor=CLI_ACTOR, action="plan.create", target=f"plan:{name}"):
        plans.create_plan(s, spec)
    common.console.print(f"plan {name} created")


@app.command("retire")
def retire(name: str) -> None:
    """Take a plan out of the catalogue: no new servers or resizes to it; servers keep it."""
    s = common.settings()
    with audit.audited(s, actor=CLI_ACTOR, action="plan.retire", target=f"plan:{name}"):
        plans.retire_plan(s, name=name)
    common.console.print(f"plan {name} retired: servers on it keep it")


@app.command("unretire")
def unretire(name: str) -> None:
    """Put a retired plan back into the catalogue."""
    s = common.settings()
    with audit.audited(s, actor=CLI_ACTOR, action="plan.unretire", target=f"plan:{name}"):
        plans.unretire_plan(s, name=name)
    common.console.print(f"plan {name} is in the catalogue again")
