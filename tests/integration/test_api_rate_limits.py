"""Rate limits through a real `containervps serve`: a bucket per tenant, then 429."""

from __future__ import annotations

import httpx
import pytest

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
            assert http.get("/v1/plans", headers=second.headers).status_code == 200
            assert http.get("/healthz").status_code == 200  # probes carry no token
    finally:
        api.stop()
