"""The error seam: every domain error and mapped foreign exception gets a status and the JSON."""

from __future__ import annotations

import inspect

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from containervps import errors
from containervps.api.errors import STATUS_BY_ERROR, install_error_handlers, status_for
from containervps.errors import RateLimited
from containervps.services.tenancy.rate_limits import RateLimiter


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
        if issubclass(cls, errors.HostSetupError):
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


def test_rate_limiter_bursts_then_refills_per_key() -> None:
    now = [1000.0]
    limiter = RateLimiter(3600, clock=lambda: now[0])  # one request back per second
    allowances = [limiter.take("tenant:1") for _ in range(3600)]
    assert [a.remaining for a in allowances[:2]] == [3599, 3598] and allowances[-1].remaining == 0
    assert allowances[-1].reset_at == pytest.approx(1000.0 + 3600)
    with pytest.raises(RateLimited) as refused:
        limiter.take("tenant:1")
    assert refused.value.details == {"limit": 3600, "retry_after_seconds": 1}
    assert limiter.take("tenant:2").remaining == 3599  # another tenant has its own bucket
    now[0] += 2.5
    assert limiter.take("tenant:1").remaining == 1  # 2.5 requests back, one spent
    now[0] += 10 * 3600
    assert limiter.take("tenant:1").remaining == 3599  # never more than the bucket holds
