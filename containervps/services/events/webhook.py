"""Events POSTed to the operator's webhook (``transfer_webhook_url``): bounded, never raised."""

from __future__ import annotations

import logging

import httpx

from containervps.config import Settings
from containervps.db.models import Event

log = logging.getLogger(__name__)

__all__ = ["post_event"]


def post_event(settings: Settings, event: Event) -> bool:
    """POST one event as JSON to the webhook; False (and a log line) when none is set or it
    failed. The event is already recorded: a webhook that is down must not undo it."""
    url = settings.transfer_webhook_url
    if not url:
        return False
    body = {
        "event": {
            "id": event.id,
            "type": event.type,
            "severity": event.severity,
            "server_id": event.server_id,
            "tenant_id": event.tenant_id,
            "message": event.message,
            "details": event.details,
            "at": event.at.isoformat(),
        }
    }
    try:
        response = httpx.post(url, json=body, timeout=settings.transfer_webhook_timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("webhook failed", extra={"event": event.id, "type": event.type, "error": exc})
        return False
    return True
