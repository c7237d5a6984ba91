"""`containervps token ...`: API tokens (the secret is shown once)."""

from __future__ import annotations

import typer

from containervps.cli import common
from containervps.errors import InvalidInput
from containervps.schemas.access import TokenPublic
from containervps.services.tenancy import audit, tenants, tokens

app = typer.Typer(help="API tokens for tenants and admins.", no_args_is_help=True)


@app.command("create")
def create(
    tenant: str | None = typer.Option(None, "--tenant", help="Tenant id or name."),
    admin: bool = typer.Option(False, "--admin", help="An admin token (admin API)."),
    name: str = typer.Option("default", help="A label for the token."),
    json_out: bool = common.JsonOption,
) -> None:
    """Create a token and print its secret once."""
    if bool(tenant) == admin:
        raise InvalidInput("pass exactly one of --tenant T or --admin")
    s = common.settings()
    tenant_id = tenants.resolve(s, tenant) if tenant else None
    with audit.audited(s, actor=tokens.CLI_ACTOR, action="token.create") as note:
        row, secret = tokens.create_token(s, name=name, tenant_id=tenant_id, is_admin=admin)
        note["target"], note["tenant_id"] = f"token:{row.id}", tenant_id
    if json_out:
        common.print_json(TokenPublic.of(row, secret=secret).model_dump())
        return
    common.console.print(f"token {row.id} ({'admin' if admin else f'tenant {tenant_id}'}):")
    common.console.print(secret, highlight=False, soft_wrap=True)
    common.err_console.print("store it now: it is not shown again")


@app.command("revoke")
def revoke(token_id: common.IdArgument) -> None:
    """Revoke a token."""
    s = common.settings()
    with audit.audited(
        s, actor=tokens.CLI_ACTOR, action="token.revoke", target=f"token:{token_id}"
    ):
        tokens.revoke_token(s, token_id)
    common.console.print(f"token {token_id} revoked")


@app.command("list")
def list_(
    tenant: str | None = typer.Option(None, "--tenant"), json_out: bool = common.JsonOption
) -> None:
    """Tokens (never their secrets)."""
    s = common.settings()
    rows = tokens.list_tokens(s, tenant_id=tenants.resolve(s, tenant) if tenant else None)
    data = [TokenPublic.of(r).model_dump(exclude={"secret"}) for r in rows]
    if json_out:
        common.print_json(data)
        return
    common.print_table(
        "tokens", list(data[0]) if data else ["id"], [list(d.values()) for d in data]
    )
