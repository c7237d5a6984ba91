"""Who is calling: the one authentication path of /v1/ requests, HTTP and websocket alike.

It runs in a middleware, before any body is read, so a request without a valid token answers
401 whatever its body holds; the dependencies in deps.py reuse the identity it stored.
"""

from __future__ import annotations

import ipaddress

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from containervps.api.errors import answer_error, refuse_websocket
from containervps.config import get_settings
from containervps.errors import ContainerVpsError, RateLimited, Unauthorized
from containervps.services.tenancy.auth_throttle import FailedAuthThrottle
from containervps.services.tenancy.rate_limits import RateLimiter
from containervps.services.tenancy.tokens import Identity, authenticate

__all__ = ["Authenticate", "client_address", "identify", "rate_limit_key"]

AUTHENTICATED_PREFIX = "/v1/"  # every tenant and admin route; probes and docs stay public


def client_address(conn: HTTPConnection) -> str:
    """The caller's address as the failed-auth throttle keys it (an IPv6 client by its /64)."""
    host = conn.client.host if conn.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"  # e.g. the test client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # One IPv6 host usually holds a whole /64: per address, it could guess without end.
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def rate_limit_key(ident: Identity) -> str:
    """One bucket per tenant, like a cloud project; admins get one per token."""
    return f"tenant:{ident.tenant_id}" if ident.tenant_id is not None else ident.actor


async def identify(conn: HTTPConnection) -> Identity:
    """The caller, once per request: failed-auth throttle, bearer token, then a rate-limit token."""
    state = conn.state
    known: Identity | None = getattr(state, "identity", None)
    if known is not None:
        return known
    throttle: FailedAuthThrottle | None = getattr(conn.app.state, "auth_throttle", None)
    address = client_address(conn)
    if throttle is not None:
        throttle.check(address)  # refused without even looking at the token
    scheme, _, token = (conn.headers.get("authorization") or "").partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" else None
    try:
        ident = await run_in_threadpool(authenticate, get_settings(), presented)
    except Unauthorized:
        if throttle is not None and presented:  # a missing token is a mistake, not a guess
            throttle.record_failure(address)
        raise
    state.identity = ident
    state.actor = ident.actor  # read by the audit log
    state.tenant_id = ident.tenant_id
    limiter: RateLimiter | None = getattr(conn.app.state, "rate_limiter", None)
    if limiter is not None:
        key = rate_limit_key(ident)
        try:
            state.rate_limit = limiter.take(key)
        except RateLimited:
            state.rate_limit = limiter.allowance(key)  # a 429 carries the RateLimit-* too
            raise
    return ident


class Authenticate:
    """Authenticate every /v1/ request (and websocket) before a route reads anything else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(AUTHENTICATED_PREFIX):
            request = Request(scope, receive)  # shares scope["state"] with the route
            try:
                await identify(request)
            except Exception as exc:  # outside the app's handlers: answer as they would
                await (await answer_error(request, exc))(scope, receive, send)
                return
        elif scope["type"] == "websocket" and path.startswith(AUTHENTICATED_PREFIX):
            websocket = WebSocket(scope, receive, send)
            try:
                await identify(websocket)
            except ContainerVpsError as exc:
                await refuse_websocket(websocket, exc)
                return
        await self.app(scope, receive, send)
