"""Rate limits through a real `containervps serve`: a bucket per tenant, then 429; consoles
spend it too; wrong tokens are throttled per client address."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from containervps.config import Settings
from containervps.lxd import Lxd
from tests.integration.api_support import ApiProcess, make_tenant

pytestmark = pytest.mark.usefixtures("cp_settings")


def test_requests_past_the_limit_get_429_and_other_tenants_go_on(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    first = make_tenant(cp_settings, ready_host, "rate-a")
    second = make_tenant(cp_settings, ready_host, "rate-b")
    api = ApiProcess(cp_settings, env={"CONTAINERVPS_API_RATE_LIMIT_PER_HOUR": "5"}).start()
    try:
        with httpx.Client(base_url=api.url, timeout=30) as http:
            seen = [http.get("/v1/plans", headers=first.headers) for _ in range(5)]
            assert [r.status_code for r in seen] == [200] * 5
            assert [r.headers["RateLimit-Remaining"] for r in seen] == ["4", "3", "2", "1", "0"]
            assert {r.headers["RateLimit-Limit"] for r in seen} == {"5"}
            over = http.get("/v1/servers", headers=first.headers)
            assert over.status_code == 429, over.text
            assert over.json()["error"]["code"] == "rate_limit_exceeded"
            # One request comes back every 3600 / 5 = 720 s.
            assert 0 < int(over.headers["Retry-After"]) <= 720
            assert over.headers["RateLimit-Remaining"] == "0"
            assert 0 < int(over.headers["RateLimit-Reset"]) - time.time() <= 3600 + 1
            assert http.get("/v1/plans", headers=second.headers).status_code == 200
            assert http.get("/healthz").status_code == 200  # probes carry no token
    finally:
        api.stop()


def _console(api: ApiProcess, headers: dict[str, str]) -> tuple[dict, int]:
    """Open a console to a server id nobody has: its error object and close code."""
    url = api.url.replace("http", "ws", 1) + "/v1/servers/999999999/console"
    with connect(url, additional_headers=headers, open_timeout=10) as ws:
        error = json.loads(ws.recv(timeout=10))["error"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    return error, closed.value.rcvd.code


def test_consoles_spend_the_bucket_and_failed_logins_are_throttled(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    tenant = make_tenant(cp_settings, ready_host, "rate-ws")
    env = {
        "CONTAINERVPS_API_RATE_LIMIT_PER_HOUR": "3",
        "CONTAINERVPS_API_AUTH_MAX_FAILURES": "3",
    }
    api = ApiProcess(cp_settings, env=env).start()
    try:
        with httpx.Client(base_url=api.url, timeout=30) as http:
            # Authentication before the body: no token, a broken body, still 401.
            broken = http.post(
                "/v1/servers", content=b"{oops", headers={"Content-Type": "application/json"}
            )
            assert broken.status_code == 401, broken.text
            assert (
                http.get("/v1/plans", headers=tenant.headers).headers["RateLimit-Remaining"] == "2"
            )
            error, code = _console(api, tenant.headers)  # one request, like any other
            assert (error["code"], code) == ("not_found", 4404)
            assert (
                http.get("/v1/plans", headers=tenant.headers).headers["RateLimit-Remaining"] == "0"
            )
            error, code = _console(api, tenant.headers)  # the bucket is empty: refused
            assert (error["code"], code) == ("rate_limit_exceeded", 4429)
            assert error["details"]["retry_after_seconds"] > 0

            # Wrong tokens from this address: 401 three times, then 429 without a look.
            guess = {"Authorization": "Bearer cvps_guess"}
            assert [http.get("/v1/plans", headers=guess).status_code for _ in range(3)] == [401] * 3
            over = http.get("/v1/plans", headers=guess)
            assert over.status_code == 429, over.text
            assert over.json()["error"]["details"]["limit"] == "failed_authentications"
            assert 0 < int(over.headers["Retry-After"]) <= 300
            error, code = _console(api, guess)
            assert (error["details"]["limit"], code) == ("failed_authentications", 4429)
    finally:
        api.stop()
