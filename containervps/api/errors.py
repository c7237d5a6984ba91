"""The one seam where domain errors become HTTP responses."""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketState

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

# Context of a validation error worth returning: the allowed range, length, values or format.
BOUND_KEYS = {
    *("min", "max", "ge", "gt", "le", "lt", "min_length", "max_length"),
    *("pattern", "expected", "first", "last"),
}

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


def _wire(value: Any) -> Any:
    """``value`` as JSON can always carry it: an error may echo input, and a lone surrogate
    (UTF-8 cannot encode it), a NaN or an object would make the error body itself fail."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_wire(str(k)): _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_wire(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return _wire(str(value))


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
        content=_wire({"error": {"code": code, "message": message, "details": details or {}}}),
        headers={"X-Request-Id": rid, **(headers or {})},
    )


def _details(exc: errors.ContainerVpsError) -> dict[str, Any]:
    """A domain error's details as the error body shows them, its resolution included."""
    details = dict(exc.details)
    if exc.resolution:
        details.setdefault("resolution", exc.resolution)
    return details


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ContainerVpsError)
    headers = {}
    if "retry_after_seconds" in exc.details:
        # RateLimit-* come from the request's bucket, set by the request-id middleware.
        headers["Retry-After"] = str(exc.details["retry_after_seconds"])
    return error_response(
        request,
        status=status_for(exc),
        code=exc.code,
        message=exc.brief,
        details=_details(exc),
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
        {
            "field": ".".join(str(p) for p in e["loc"] if p != "body"),
            "message": e["msg"],
            # The bound that was broken, e.g. {"min": 1, "max": 100} or {"max_length": 63}.
            **{k: v for k, v in (e.get("ctx") or {}).items() if k in BOUND_KEYS},
        }
        for e in problems
    ]
    summary = "; ".join(f"{f['field'] or 'body'}: {f['message']}" for f in fields)
    return error_response(
        request,
        status=422,
        code="invalid_input",
        message=f"invalid input: {summary}",
        details={"field": fields[0]["field"], "fields": fields},
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


async def answer_error(request: Request, exc: Exception) -> JSONResponse:
    """What the installed handlers answer for ``exc``, for middleware that runs outside them."""
    handler = next(handler for cls, handler in HANDLERS if isinstance(exc, cls))
    return await handler(request, exc)


class CatchAll:
    """ASGI middleware: an exception no handler answered gets the error JSON (500 unless it
    maps to another status) and the keep-alive connection stays open. Starlette's
    ServerErrorMiddleware answers too, but then re-raises, and uvicorn closes the connection.

    A path with a lone surrogate is escaped first: uvicorn decodes paths with replacement
    characters, but an ASGI server need not, and neither routing nor the audit log could
    carry it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["path"] = _wire(scope["path"])
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:
                raise  # half an answer is out: closing the connection is the only honest end
            response = await answer_error(Request(scope), exc)
            await response(scope, receive, send)


async def refuse_websocket(websocket: WebSocket, exc: errors.ContainerVpsError) -> None:
    """The error JSON in a text frame, then a close with code 4000 + the HTTP status."""
    if websocket.application_state == WebSocketState.CONNECTING:  # not accepted yet
        await websocket.accept()
    body = {"error": {"code": exc.code, "message": exc.brief, "details": _details(exc)}}
    await websocket.send_text(json.dumps(_wire(body)))
    await websocket.close(code=4000 + status_for(exc), reason=exc.code)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain, validation and HTTP errors to the error JSON; never leak a bare 500."""
    for exc_class, handler in HANDLERS:
        app.add_exception_handler(exc_class, handler)
