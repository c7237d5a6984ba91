"""An error body can always be sent: echoed input with a lone surrogate is escaped, and values
JSON cannot carry (NaN, objects) become text, instead of the answer itself failing with a 500."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient

from containervps import errors
from containervps.api.errors import install_error_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/echo")
    def echo() -> None:
        raise errors.InvalidInput(
            "unknown SSH key 'k\ud800'",
            details={"value": "k\ud800", "k\udfff": ["\ud800"], "nan": float("nan")},
            resolution="add it first",
        )

    @app.get("/odd")
    def odd() -> None:
        raise errors.Conflict("odd details", details={"when": datetime(2026, 1, 1, tzinfo=UTC)})

    return app


def test_echoed_lone_surrogates_are_escaped_in_the_error_body() -> None:
    r = TestClient(_app()).get("/echo")
    assert r.status_code == 422
    error = json.loads(r.content.decode("utf-8"))["error"]  # strict UTF-8
    assert error["message"] == "unknown SSH key 'k\\ud800'"
    assert error["details"]["value"] == "k\\ud800"
    assert error["details"]["k\\udfff"] == ["\\ud800"]
    assert error["details"]["nan"] == "nan"


def test_details_json_cannot_carry_become_text() -> None:
    r = TestClient(_app()).get("/odd")
    assert r.status_code == 409
    assert r.json()["error"]["details"] == {"when": "2026-01-01 00:00:00+00:00"}
