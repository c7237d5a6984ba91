"""What every CLI command shares: settings, LXD, output helpers and error handling."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, is_dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from containervps.config import Settings, get_settings
from containervps.errors import ContainerVpsError
from containervps.logs import configure_logging
from containervps.lxd import Lxd, connect
from containervps.schemas.bounds import MAX_ID

console = Console()
err_console = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print JSON for scripts.")
IdArgument = Annotated[int, typer.Argument(min=1, max=MAX_ID)]  # a row id SQLite can hold


def settings() -> Settings:
    s = get_settings()
    configure_logging(level=s.log_level, fmt=s.log_format)
    return s


def lxd() -> Lxd:
    return connect(settings())


def to_jsonable(value: Any) -> Any:
    """Dataclasses and containers of them as plain JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


class ErrorHandlingGroup(TyperGroup):
    """Root command group: domain errors become one line on stderr and exit code 1."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context type is private
        try:
            return super().invoke(ctx)
        except ContainerVpsError as exc:
            err_console.print(
                f"[red]error:[/red] {exc.one_line()}", highlight=False, soft_wrap=True
            )
            ctx.exit(1)
        except OperationalError as exc:
            if "no such column" not in str(exc) and "no such table" not in str(exc):
                raise
            err_console.print(
                "[red]error:[/red] the database is older than this version of containervps "
                "(run `containervps db upgrade`)",
                highlight=False,
                soft_wrap=True,
            )
            ctx.exit(1)
