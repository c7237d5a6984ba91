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

COLUMNS = ["name", *PLAN_NUMBERS]


@app.command("list")
def list_(json_out: bool = common.JsonOption) -> None:
    """Every plan."""
    rows = [PlanPublic.of(r).model_dump() for r in plans.list_plans(common.settings())]
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
