"""Rate limits, the failed-authentication throttle and the per-tenant caps on open requests:
their logic, then through the app (authentication before the body, the 429s and their headers)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from containervps.api.app import create_app
from containervps.config import Settings, get_settings
from containervps.errors import RateLimited
from containervps.services.actions import store
from containervps.services.tenancy import tokens
from containervps.services.tenancy.auth_throttle import FailedAuthThrottle
from containervps.services.tenancy.concurrency import EXECS, LONG_POLLS, ConcurrencyCaps
from containervps.services.tenancy.rate_limits import RateLimiter
from tests.unit.fakes import create, make_tenant


def test_failed_auth_throttle_blocks_an_address_until_its_window_moves_on() -> None:
    now = [100.0]
    throttle = FailedAuthThrottle(max_failures=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(3):
        throttle.check("10.0.0.1")
        throttle.record_failure("10.0.0.1")
        now[0] += 10
    with pytest.raises(RateLimited) as refused:
        throttle.check("10.0.0.1")  # failures at 100, 110, 120; now 130
    assert refused.value.details == {
        "limit": "failed_authentications",
        "max": 3,
        "window_seconds": 60,
        "retry_after_seconds": 30,  # the failure at 100 leaves the window at 160
    }
    throttle.check("10.0.0.2")  # another address is not affected
    now[0] = 160.0
    throttle.check("10.0.0.1")  # the oldest failure left the window: one more try
    throttle.record_failure("10.0.0.1")
    with pytest.raises(RateLimited):
        throttle.check("10.0.0.1")
    now[0] = 1000.0
    throttle.check("10.0.0.1")
    assert throttle._failures == {}  # expired windows are forgotten


def test_failed_auth_throttle_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("containervps.services.tenancy.auth_throttle.MAX_ADDRESSES", 4)
    now = [0.0]
    throttle = FailedAuthThrottle(max_failures=2, window_seconds=60, clock=lambda: now[0])
    for i in range(10):
        throttle.record_failure(f"10.0.0.{i}")
        now[0] += 1
    assert len(throttle._failures) <= 4 and "10.0.0.9" in throttle._failures


def test_caps_count_per_caller_and_name_the_cap_when_full() -> None:
    caps = ConcurrencyCaps({EXECS: 2, LONG_POLLS: 0})
    with caps.hold("tenant:1", limit=EXECS), caps.hold("tenant:1", limit=EXECS):
        with pytest.raises(RateLimited) as refused:
            caps.acquire("tenant:1", limit=EXECS)
        assert refused.value.details == {
            "limit": "concurrent_execs",
            "max": 2,
            "retry_after_seconds": 1,
        }
        assert "at most 2 execs" in refused.value.brief
        with caps.hold("tenant:2", limit=EXECS):  # another tenant has its own slots
            assert caps.held("tenant:2", limit=EXECS) == 1
        for _ in range(10):  # a cap of 0: no cap
            caps.acquire("tenant:1", limit=LONG_POLLS)
    assert caps.held("tenant:1", limit=EXECS) == 0  # released on the way out
    with pytest.raises(ValueError), caps.hold("tenant:1", limit=EXECS):
        raise ValueError  # released on an error too
    assert caps.held("tenant:1", limit=EXECS) == 0


def test_rate_limiter_allowance_spends_nothing() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])  # one request back every 1800 s
    limiter.take("k")
    limiter.take("k")
    for _ in range(3):
        assert limiter.allowance("k").remaining == 0
    assert limiter.allowance("k").reset_at == pytest.approx(3600.0)
    now[0] = 1800.0
    assert limiter.allowance("k").remaining == 1


@pytest.fixture
def app_env(db: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The app's settings: the unit database, a small failed-auth throttle and rate limit."""
    for key, value in {
        "CONTAINERVPS_DATA_DIR": str(db.data_dir),
        "CONTAINERVPS_NIC_EGRESS_LIMIT": "skip",
        "CONTAINERVPS_API_AUTH_MAX_FAILURES": "3",
        "CONTAINERVPS_API_RATE_LIMIT_PER_HOUR": "6",
        "CONTAINERVPS_API_MAX_CONCURRENT_LONG_POLLS": "2",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _tenant_headers(settings: Settings) -> tuple[int, dict[str, str]]:
    tenant_id = make_tenant(settings)
    _, token = tokens.create_token(settings, name="t", tenant_id=tenant_id)
    return tenant_id, {"Authorization": f"Bearer {token}"}


def test_authentication_comes_before_the_body(app_env: Settings) -> None:
    client = TestClient(create_app(), raise_server_exceptions=False)
    _, good = _tenant_headers(app_env)
    bad = {"Authorization": "Bearer cvps_wrong"}
    json_type = {"Content-Type": "application/json"}
    for headers in ({}, bad):
        for body in (b"{not json", b"[]", b"x" * (app_env.api_max_body_bytes + 1)):
            r = client.post("/v1/servers", content=body, headers={**headers, **json_type})
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "unauthorized" and r.headers["X-Request-Id"]
            assert "RateLimit-Limit" not in r.headers  # a stranger spends no tenant's bucket
        client = TestClient(create_app(), raise_server_exceptions=False)  # a fresh throttle
    r = client.post("/v1/ssh_keys", content=b"{not json", headers={**good, **json_type})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    assert r.headers["RateLimit-Remaining"] == "5"  # authenticated, so it spent a request
    assert client.get("/healthz").status_code == 200  # probes stay public


def test_failed_authentications_are_throttled_per_address(app_env: Settings) -> None:
    app = create_app()
    client = TestClient(app, raise_server_exceptions=False)
    _, good = _tenant_headers(app_env)
    assert client.get("/v1/plans", headers=good).status_code == 200
    for _ in range(5):  # a missing token is a mistake, not a guess: never counted
        assert client.get("/v1/plans").status_code == 401
    for _ in range(3):
        r = client.get("/v1/plans", headers={"Authorization": "Bearer cvps_guess"})
        assert r.status_code == 401
    for headers in ({"Authorization": "Bearer cvps_guess"}, good):  # the token is not checked
        r = client.get("/v1/plans", headers=headers)
        assert r.status_code == 429, r.text
        error = r.json()["error"]
        assert error["code"] == "rate_limit_exceeded"
        assert error["details"]["limit"] == "failed_authentications"
        assert error["details"]["max"] == 3
        assert 0 < int(r.headers["Retry-After"]) <= 300
    elsewhere = TestClient(app, client=("192.0.2.7", 5000))
    assert elsewhere.get("/v1/plans", headers=good).status_code == 200


def test_a_429_carries_the_rate_limit_headers(app_env: Settings) -> None:
    client = TestClient(create_app(), raise_server_exceptions=False)
    _, good = _tenant_headers(app_env)
    answers = [client.get("/v1/plans", headers=good) for _ in range(7)]
    assert [r.status_code for r in answers] == [200] * 6 + [429]
    over = answers[-1]
    assert over.json()["error"]["details"]["limit"] == 6
    assert over.headers["RateLimit-Limit"] == "6"
    assert over.headers["RateLimit-Remaining"] == "0"
    # Full again 6 * 600 s from now; one request back in at most 600 s.
    assert 0 < int(over.headers["RateLimit-Reset"]) - time.time() <= 3600 + 1
    assert 0 < int(over.headers["Retry-After"]) <= 600
    for r in answers[:-1]:
        assert all(h in r.headers for h in ("RateLimit-Limit", "RateLimit-Reset"))


def test_long_polls_past_the_cap_get_429_naming_it(
    app_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINERVPS_API_RATE_LIMIT_PER_HOUR", "3600")
    get_settings.cache_clear()
    app = create_app()
    client = TestClient(app, raise_server_exceptions=False)
    tenant_id, good = _tenant_headers(app_env)
    aid = create(app_env, tenant_id, "poll").action.id

    def long_poll() -> int:
        return client.get(f"/v1/actions/{aid}", params={"wait": 20}, headers=good).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        held = [pool.submit(long_poll) for _ in range(2)]
        deadline = time.monotonic() + 10
        while app.state.fair_share.caps.held(f"tenant:{tenant_id}", limit=LONG_POLLS) < 2:
            assert time.monotonic() < deadline and not any(f.done() for f in held)
            time.sleep(0.05)
        r = client.get(f"/v1/actions/{aid}", params={"wait": 5}, headers=good)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["details"] == {
            "limit": "concurrent_long_polls",
            "max": 2,
            "retry_after_seconds": 1,
            "resolution": "wait until one of your long polls ends, then retry",
        }
        assert r.headers["Retry-After"] == "1" and "RateLimit-Remaining" in r.headers
        shown = client.get(f"/v1/actions/{aid}", headers=good)  # a plain show has no cap
        assert shown.status_code == 200 and shown.json()["action"]["status"] == "running"
        assert not any(f.done() for f in held)
        store.finish(app_env, aid or 0)
        assert [f.result(timeout=10) for f in held] == [200, 200]
