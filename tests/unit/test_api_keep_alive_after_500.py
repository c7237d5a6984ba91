"""An unexpected exception is answered with the documented 500 body over real HTTP (uvicorn, as
`serve` runs it), and the same keep-alive connection serves the next request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from containervps.api.app import create_app
from containervps.config import Settings
from tests.integration.api_support import free_port


def _app_with_a_failing_route() -> FastAPI:
    app = create_app()

    @app.get("/test/peer")
    def peer(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}  # the client's port names the connection

    @app.get("/test/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    return app


@pytest.fixture
def server_url(settings: Settings) -> Iterator[str]:
    """The app under uvicorn in a thread (no lifespan: no reconciler, no LXD)."""
    port = free_port()
    config = uvicorn.Config(
        _app_with_a_failing_route(),
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="critical",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_an_unexpected_500_keeps_the_connection(server_url: str) -> None:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        before = client.get("/test/peer").json()["port"]
        failed = client.get("/test/boom", headers={"X-Request-Id": "req-boom"})
        after = client.get("/test/peer").json()["port"]
    assert failed.status_code == 500
    assert failed.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal error; the request id identifies it in the logs",
            "details": {},
        }
    }
    assert failed.headers["X-Request-Id"] == "req-boom"
    assert "secret" not in failed.text
    assert "close" not in failed.headers.get("connection", "").lower()
    # A new connection would come from another client port.
    assert after == before
