"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from containervps.api.openapi import errors
from containervps.config import get_settings
from containervps.db.engine import get_engine
from containervps.errors import ServiceUnavailable
from containervps.lxd import connect
from containervps.schemas.responses import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=errors(502, 503))
def readyz() -> dict[str, str]:
    """The database and LXD answer."""
    settings = get_settings()
    try:
        with get_engine(settings).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable(f"database not reachable: {exc}") from exc
    version = connect(settings).host.server_info().version
    return {"status": "ok", "database": "ok", "lxd": version}
