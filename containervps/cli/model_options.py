"""Typer options made from a schema's fields, so a field written once in ``schemas`` is also
a CLI option (``max_servers`` -> ``--max-servers``)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import typer
from pydantic import BaseModel

__all__ = ["model_options"]

F = TypeVar("F", bound=Callable[..., Any])


def _option(field: Any, *, required: bool) -> tuple[Any, Any]:
    """(annotation, default) of one field's option."""
    if required and field.is_required():
        return field.annotation, typer.Option(...)
    if required:
        return field.annotation, typer.Option(field.default)
    return field.annotation | None, typer.Option(None, help="Unchanged (or default) if not given.")


def model_options(
    model: type[BaseModel], *, into: str, required: bool, exclude: Collection[str] = ()
) -> Callable[[F], F]:
    """Add an option per field of ``model`` to a command; the command gets them as one dict
    in its parameter ``into`` (with ``required=False`` every option is optional: None)."""

    def decorate(func: F) -> F:
        fields = {k: f for k, f in model.model_fields.items() if k not in exclude}
        signature = inspect.signature(func)
        kept = [p for p in signature.parameters.values() if p.name != into]
        added = []
        for name, field in fields.items():
            annotation, default = _option(field, required=required)
            added.append(
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
                )
            )

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in fields}
            return func(*args, **kwargs, **{into: values})

        command.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[
                *(p for p in kept if p.kind != inspect.Parameter.KEYWORD_ONLY),
                *added,
                *(p for p in kept if p.kind == inspect.Parameter.KEYWORD_ONLY),
            ]
        )
        return command  # type: ignore[return-value]

    return decorate
