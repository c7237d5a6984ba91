"""What every schema family shares: strict request bodies, timestamps, pagination."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from containervps.errors import InvalidInput

__all__ = ["Pagination", "Strict", "build", "timestamp"]

M = TypeVar("M", bound=BaseModel)


def build(model: type[M], **values: Any) -> M:
    """``model(**values)``, with a validation failure as InvalidInput naming the field (the
    CLI and the services build bodies this way; the API's own 422s say the same)."""
    try:
        return model(**values)
    except ValidationError as exc:
        problems = exc.errors()
        fields = [".".join(str(part) for part in e["loc"]) for e in problems]
        raise InvalidInput(
            f"{fields[0]}: {problems[0]['msg']}", details={"field": fields[0], "fields": fields}
        ) from exc


class Strict(BaseModel):
    """A request body: unknown fields are refused (422 naming them)."""

    model_config = ConfigDict(extra="forbid")


def timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as the API prints times."""
    return value.isoformat().replace("+00:00", "Z") if value else None


class Pagination(BaseModel):
    """The ``meta.pagination`` block of a list answer."""

    page: int
    per_page: int
    previous_page: int | None
    next_page: int | None
    last_page: int
    total_entries: int

    @classmethod
    def of(cls, *, page: int, per_page: int, total: int) -> Pagination:
        last = max(1, -(-total // per_page))
        return cls(
            page=page,
            per_page=per_page,
            previous_page=page - 1 if page > 1 else None,
            next_page=page + 1 if page < last else None,
            last_page=last,
            total_entries=total,
        )
