"""The error seam: every domain error and mapped foreign exception gets a status and the JSON."""

from __future__ import annotations

import inspect

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from containervps import errors
from containervps.api.errors import STATUS_BY_ERROR, install_error_handlers, status_for


def test_every_domain_error_has_a_non_500_status() -> None:
    classes = [
        obj
        for name in errors.__all__
        if inspect.isclass(obj := getattr(errors, name))
        and issubclass(obj, errors.ContainerVpsError)
        and obj is not errors.ContainerVpsError
    ]
    assert classes
    for cls in classes:
        if cls is errors.HostSetupError:
            continue  # an operator problem: 500 is right for the API
        assert (
            status_for(cls("x")) < 500
            or cls.code == "service_unavailable"
            or cls is errors.LxdError
        )


def test_issue_contract_statuses() -> None:
    assert status_for(errors.Locked("x")) == 409
    assert status_for(errors.ResourceLimitExceeded("x")) == 403
    assert status_for(errors.ResourceUnavailable("x")) == 409
    assert status_for(errors.LxdUnavailable("x")) == 503
    assert status_for(errors.InvalidInput("x")) == 422
    assert {cls for cls, _ in STATUS_BY_ERROR} >= {
        errors.Locked,
        errors.Unauthorized,
        errors.NotFound,
    }


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/locked")
    def locked() -> None:
        raise errors.Locked("busy", details={"action_id": 7}, resolution="wait")

    @app.get("/db")
    def db() -> None:
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    return app


def test_error_json_shape_and_foreign_exceptions() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    r = client.get("/locked")
    assert r.status_code == 409
    assert r.json() == {
        "error": {
            "code": "locked",
            "message": "busy",
            "details": {"action_id": 7, "resolution": "wait"},
        }
    }
    assert r.headers["X-Request-Id"]
    r = client.get("/db")
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"
    r = client.get("/boom")
    assert r.status_code == 500 and "secret" not in r.text
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
