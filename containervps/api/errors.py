"""The one seam where domain errors become HTTP responses."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from containervps import errors

log = logging.getLogger(__name__)

# Most specific class first: the first isinstance match wins.
STATUS_BY_ERROR: list[tuple[type[errors.ContainerVpsError], int]] = [
    (errors.LxdUnavailable, 503),
    (errors.LxdNotFound, 404),
    (errors.InvalidInput, 422),
    (errors.ExecLimitExceeded, 422),  # the request asked for more than an exec may take
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.RateLimited, 429),
    (errors.Locked, 409),  # the contract: overlapping actions answer 409 `locked`
    (errors.Conflict, 409),
    (errors.ResourceLimitExceeded, 403),
    (errors.ResourceUnavailable, 409),
    (errors.ServiceUnavailable, 503),
    (errors.HostSetupError, 500),
    (errors.LxdError, 502),
]

HTTP_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "invalid_input",
    422: "invalid_input",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}


def status_for(exc: errors.ContainerVpsError) -> int:
    """HTTP status of a domain error."""
    return next((code for cls, code in STATUS_BY_ERROR if isinstance(exc, cls)), 500)


def request_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    return rid or uuid.uuid4().hex


def error_response(
    request: Request,
    *,
    status: int,
    code: str,
    message: str,
    details: dict | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The documented error body with an X-Request-Id header."""
    rid = request_id(request)
    request.state.error_code = code  # read by the audit log
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details or {}}},
        headers={"X-Request-Id": rid, **(headers or {})},
    )


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ContainerVpsError)
    details = dict(exc.details)
    if exc.resolution:
        details.setdefault("resolution", exc.resolution)
    headers = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.details["retry_after_seconds"])
        headers["RateLimit-Limit"] = str(exc.details["limit"])
        headers["RateLimit-Remaining"] = "0"
    return error_response(
        request,
        status=status_for(exc),
        code=exc.code,
        message=exc.brief,
        details=details,
        headers=headers,
    )


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = exc.errors()
    if any(e.get("type") == "json_invalid" for e in problems):
        where = next(e["loc"][-1] for e in problems if e.get("type") == "json_invalid")
        error = next(e.get("ctx", {}).get("error", "") for e in problems)
        return error_response(
            request,
            status=400,
            code="invalid_input",
            message=f"request body is not valid JSON (at character {where}: {error})",
            details={"position": where},
        )
    fields = [
        {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
        for e in problems
    ]
    summary = "; ".join(f"{f['field'] or 'body'}: {f['message']}" for f in fields)
    return error_response(
        request,
        status=422,
        code="invalid_input",
        message=f"invalid input: {summary}",
        details={"fields": fields},
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(
        request,
        status=exc.status_code,
        code=HTTP_CODES.get(exc.status_code, "error"),
        message=str(exc.detail),
    )


async def _database(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OperationalError)
    # A foreign exception mapped here, at the seam: SQLite busy/locked past the timeout.
    log.warning("database unavailable", extra={"error": str(exc.orig)})
    return error_response(
        request,
        status=503,
        code="service_unavailable",
        message="the database is busy or unavailable; retry",
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"request_id": request_id(request)})
    return error_response(
        request,
        status=500,
        code="internal_error",
        message="internal error; the request id identifies it in the logs",
    )


# Each foreign exception type is mapped here, at the one seam; the last catches the rest.
HANDLERS: list[tuple[type[Exception], Callable[[Request, Exception], Awaitable[JSONResponse]]]] = [
    (errors.ContainerVpsError, _domain),
    (RequestValidationError, _validation),
    (StarletteHTTPException, _http),
    (OperationalError, _database),
    (Exception, _unexpected),
]


def install_error_handlers(app: FastAPI) -> None:
    """Map domain, validation and HTTP errors to the error JSON; never leak a bare 500."""
    for exc_class, handler in HANDLERS:
        app.add_exception_handler(exc_class, handler)
