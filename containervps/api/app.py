"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from containervps import __version__
from containervps.api import health
from containervps.api.auth import Authenticate
from containervps.api.errors import CatchAll, error_response, install_error_handlers
from containervps.api.fair_share import FairShare
from containervps.api.openapi import install_openapi
from containervps.api.periodic import Periodic
from containervps.api.routes import (
    actions,
    admin,
    catalogue,
    changes,
    events,
    firewalls,
    guest,
    hosts,
    servers,
    snapshots,
    ssh_keys,
    usage,
)
from containervps.config import Settings, get_settings
from containervps.db.engine import scrub_wal
from containervps.errors import ContainerVpsError
from containervps.logs import configure_logging
from containervps.lxd import connect
from containervps.services.actions.worker import ActionWorker
from containervps.services.reconcile import Reconciler
from containervps.services.tenancy import audit
from containervps.services.tenancy.auth_throttle import FailedAuthThrottle
from containervps.services.tenancy.rate_limits import Allowance, RateLimiter

log = logging.getLogger(__name__)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    catalogue.router,
    changes.router,  # before servers: its /actions/{command} is generic
    servers.router,
    guest.router,
    snapshots.router,
    events.router,
    usage.router,
    ssh_keys.router,
    firewalls.router,
    actions.router,
    admin.router,
    hosts.router,
)

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
THREAD_TOKENS = 200


class BodyLimit:
    """Refuse request bodies over ``max_bytes``, also when no Content-Length is sent.

    The body is read here (API bodies are small) and replayed to the app; an oversized one is
    answered 413 before any route runs, so nothing is half-done.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:  # refused before reading it
            await self._too_large(scope, receive, send)
            return
        if scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # client went away: let the app see it
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            Request(scope),
            status=413,
            code="invalid_input",
            message=f"request body over {self.max_bytes} bytes",
            details={"max_bytes": self.max_bytes},
        )
        await response(scope, receive, send)


def _reconcile_loop(settings: Settings, worker: ActionWorker, stop: threading.Event) -> None:
    """A pass at start-up (resuming interrupted actions), then every reconcile_interval."""
    while True:
        try:
            Reconciler(
                settings, connect(settings), busy=worker.in_flight, submit=worker.submit
            ).run()
        except ContainerVpsError as exc:
            log.warning("reconcile pass failed", extra={"error": exc.one_line()})
        except Exception:
            log.exception("reconcile pass crashed")
        scrub_wal(settings)  # a password hash an action dropped while readers held the log
        interval = settings.reconcile_interval
        if interval <= 0 or stop.wait(interval):
            return


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    # Sync routes and their dependencies run on these threads. Long polls wait without one, and
    # execs and consoles use FairShare's own threads: a tenant can hold none of these for long.
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREAD_TOKENS
    worker = ActionWorker(settings, workers=settings.action_workers)
    stop = threading.Event()
    app.state.worker = worker
    loop = threading.Thread(
        target=_reconcile_loop, args=(settings, worker, stop), name="cvps-reconcile", daemon=True
    )
    loop.start()
    periodic = Periodic(settings)  # usage sampling and the lxcfs watchdog, off this GIL
    periodic.start()
    try:
        yield
    finally:
        stop.set()
        periodic.shutdown()
        worker.shutdown(wait=True)


def create_app() -> FastAPI:
    """Build the app: routes, error mapping, request ids, body limit, rate limits, audit log."""
    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    app = FastAPI(title="containervps", version=__version__, docs_url="/docs", lifespan=_lifespan)
    if settings.api_rate_limit_per_hour > 0:
        app.state.rate_limiter = RateLimiter(settings.api_rate_limit_per_hour)
    if settings.api_auth_max_failures > 0:
        app.state.auth_throttle = FailedAuthThrottle(
            max_failures=settings.api_auth_max_failures,
            window_seconds=settings.api_auth_failure_window_seconds,
        )
    app.state.fair_share = FairShare(settings)
    # Innermost: a route's unexpected exception is answered here, so the middlewares outside
    # still add their headers and the audit row, and the connection stays open.
    app.add_middleware(CatchAll)
    # Inside the request-id middleware: its 413 still gets a request id and an audit row.
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    # Outside the body limit: no token answers 401 (or 429) before a byte of the body is read.
    app.add_middleware(Authenticate)

    @app.middleware("http")
    async def _request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        allowance: Allowance | None = getattr(request.state, "rate_limit", None)
        if allowance is not None:
            response.headers["RateLimit-Limit"] = str(allowance.limit)
            response.headers["RateLimit-Remaining"] = str(allowance.remaining)
            response.headers["RateLimit-Reset"] = str(int(allowance.reset_at))
        if request.method in MUTATING and request.url.path.startswith("/v1/"):
            await run_in_threadpool(_audit, settings, request, response)
        return response

    app.add_middleware(CatchAll)  # outermost: a failure of a middleware itself, e.g. the audit
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app, routes=[r for router in ROUTERS for r in router.routes])
    return app


def _audit(settings: Settings, request: Request, response: Response) -> None:
    route = request.scope.get("route")
    code = getattr(request.state, "error_code", None)
    audit.record(
        settings,
        actor=getattr(request.state, "actor", "anonymous"),
        tenant_id=getattr(request.state, "tenant_id", None),
        action=f"{request.method} {getattr(route, 'path', request.url.path)}",
        target=getattr(request.state, "audit_target", request.url.path),
        outcome="success" if response.status_code < 400 else f"error:{code or 'unknown'}",
        status_code=response.status_code,
        request_id=request.state.request_id,
    )
