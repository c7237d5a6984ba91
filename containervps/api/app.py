"""The FastAPI application factory."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from containervps import __version__
from containervps.api import health
from containervps.api.errors import install_error_handlers
from containervps.config import get_settings
from containervps.logs import configure_logging


def create_app() -> FastAPI:
    """Build the app: routes, error mapping and request ids."""
    settings = get_settings()
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    app = FastAPI(title="containervps", version=__version__, docs_url="/docs")

    @app.middleware("http")
    async def _request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        return response

    install_error_handlers(app)
    app.include_router(health.router)
    return app
