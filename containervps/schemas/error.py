"""The one error body every failed request answers with (``api/errors.py`` builds it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ErrorBody", "ErrorDetail"]


class ErrorDetail(BaseModel):
    code: str = Field(
        description=(
            "Stable error code: invalid_input, unauthorized, forbidden, not_found, conflict, "
            "locked, resource_limit_exceeded (details.limit), resource_unavailable "
            "(details.resource), rate_limit_exceeded, service_unavailable, upgrade_required, "
            "lxd_error, internal_error"
        )
    )
    message: str
    details: dict[str, Any] = Field(
        description="Machine-readable context: the field at fault, the limit, a resolution..."
    )


class ErrorBody(BaseModel):
    """What every error answers: {"error": {"code", "message", "details"}}."""

    error: ErrorDetail
