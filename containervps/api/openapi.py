"""The OpenAPI document as the wire has it: every error answer with the real error body.

FastAPI documents FastAPI's own 422 body (``HTTPValidationError``) and none of the errors our
seam in ``api/errors.py`` answers. ``document`` fixes both after FastAPI built the document:
routes declare the errors of their use case (``responses=errors(404, 409)``); the errors that
follow from how a route is built are derived here from its dependencies, so they cannot be
forgotten or go stale when a dependency is added:

- a bearer token (every /v1/ path: the Authenticate middleware checks it first): 401, 429
  (rate limit, failed logins, concurrency caps) and 503 (the token lookup reads the database);
  a tenant or admin token (``TenantDep``, ``AdminDep``): also 403; with an id in the path: 404
- LXD (``LxdDep``): 502 (LXD refused) and 503 (LXD down)
- parameters or a body: 422; a body: 400 (not JSON); a mutating method: 413 (body too large)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, get_args

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from containervps.api.auth import AUTHENTICATED_PREFIX
from containervps.api.deps import AdminDep, IdentityDep, LxdDep, TenantDep
from containervps.schemas.error import ErrorBody

__all__ = ["BEARER", "ERROR_STATUSES", "document", "errors", "install_openapi"]

REF = "#/components/schemas/"
BEARER = "bearerAuth"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}

# Every error status the API answers, with what it means here.
ERROR_STATUSES: dict[int, str] = {
    400: "The body is not valid JSON",
    401: "No bearer token, or an unknown or revoked one",
    403: "The token may not do this (tenant vs admin), a protection flag, or a tenant quota "
    "(code resource_limit_exceeded, details.limit)",
    404: "No such object, or another tenant's",
    409: "The object's state or a concurrent action forbids it (code conflict or locked), or "
    "the host ran out of something (code resource_unavailable, details.resource)",
    413: "The request body is over the size limit",
    422: "The input failed validation (details.fields or details.field names it)",
    426: "A WebSocket path asked without the upgrade",
    429: "Rate limit, concurrency cap or too many failed logins (Retry-After says when to retry)",
    502: "LXD refused or failed the operation",
    503: "LXD or the database is unavailable or busy; retry",
}

REQUEST_ID_REF = "#/components/headers/X-Request-Id"
REQUEST_ID = {
    "description": "Identifies the request in the logs and the audit log (sent or made up)",
    "required": True,
    "schema": {"type": "string"},
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: the error statuses its use case answers, with ErrorBody."""
    return {
        status: {"model": ErrorBody, "description": ERROR_STATUSES[status]} for status in statuses
    }


def _dependency(alias: Any) -> Callable[..., Any]:
    """The function behind an ``Annotated[..., Depends(f)]`` alias of ``api/deps.py``."""
    dependency: Callable[..., Any] = get_args(alias)[1].dependency
    return dependency


IDENTITY, TENANT, ADMIN, LXD = (_dependency(a) for a in (IdentityDep, TenantDep, AdminDep, LxdDep))


def _walk(dependant: Dependant) -> list[Dependant]:
    """The dependant and every dependency below it."""
    return [dependant, *(d for sub in dependant.dependencies for d in _walk(sub))]


def _authenticated(route: APIRoute) -> bool:
    """The caller needs a bearer token (checked before the route runs, or by it)."""
    return route.path_format.startswith(AUTHENTICATED_PREFIX) or IDENTITY in {
        d.call for d in _walk(route.dependant)
    }


def derived_statuses(route: APIRoute, method: str) -> set[int]:
    """The error statuses that follow from how ``route`` is built."""
    parts = _walk(route.dependant)
    calls = {d.call for d in parts}
    params = any(
        d.path_params
        or d.query_params
        or d.cookie_params
        or d.body_params
        or any(h.alias.lower() != "authorization" for h in d.header_params)  # never invalid
        for d in parts
    )
    found: set[int] = set()
    if params or route.body_field is not None:
        found.add(422)
    if route.body_field is not None:
        found.add(400)
    if method in MUTATING:
        found.add(413)
    if _authenticated(route):
        found |= {401, 429, 503}
        if IDENTITY in calls and route.dependant.path_params:
            found.add(404)
    if calls & {TENANT, ADMIN}:
        found.add(403)
    if LXD in calls:
        found |= {502, 503}
    return found


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_STATUSES[status],
        "content": {"application/json": {"schema": {"$ref": f"{REF}ErrorBody"}}},
    }


def _document_route(operation: dict[str, Any], route: APIRoute, method: str) -> None:
    responses = operation.setdefault("responses", {})
    declared = {int(s) for s in route.responses if str(s).isdigit() and int(s) >= 400}
    answered = declared | derived_statuses(route, method)
    for status in [s for s in responses if s.isdigit() and int(s) >= 400]:
        if int(status) not in answered:  # FastAPI's 422 where only the token header is declared
            del responses[status]
    for status in answered:
        responses[str(status)] = _error_response(status)
    for status, answer in responses.items():
        if status.isdigit() and int(status) >= 200:  # every answer but a WebSocket's 101
            answer.setdefault("headers", {})["X-Request-Id"] = {"$ref": REQUEST_ID_REF}
    operation["responses"] = dict(sorted(responses.items()))
    # The token is a security scheme, not a parameter to fill in (FastAPI lists the header).
    params = [
        p
        for p in operation.get("parameters", [])
        if not (p["in"] == "header" and p["name"].lower() == "authorization")
    ]
    if params:
        operation["parameters"] = params
    else:
        operation.pop("parameters", None)
    if _authenticated(route):
        operation["security"] = [{BEARER: []}]


def document(app: FastAPI, *, routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """FastAPI's document of ``app`` with the error answers and bearer auth of ``routes``."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    error_schema = ErrorBody.model_json_schema(ref_template=REF + "{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorBody"] = error_schema
    components["headers"] = {"X-Request-Id": REQUEST_ID}
    components["securitySchemes"] = {
        BEARER: {"type": "http", "scheme": "bearer", "description": "An API token"}
    }
    for route in (r for r in routes if isinstance(r, APIRoute)):  # websockets: no operation
        for method in sorted(route.methods or ()):
            operation = doc["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _document_route(operation, route, method)
    # Replaced above by ErrorBody everywhere: FastAPI's own 422 body is never answered.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc


def install_openapi(app: FastAPI, *, routes: Sequence[BaseRoute]) -> None:
    """Serve ``document`` (built once, on first use) as the app's /openapi.json."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, routes=routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
