"""Fuzzing the API with schemathesis: a real `containervps serve` child on the real LXD, every
operation of its OpenAPI document, a few generated requests each, as a tenant or an admin.

Fails on any 5xx and on any answer the document does not allow (status, content type, body,
headers). Bounded and deterministic: CVPS_FUZZ_EXAMPLES requests per operation (default 5)
in the fuzzing phase from a fixed seed, after schemathesis's examples and coverage phases
(boundary and invalid values of each parameter); the tenant quota bounds servers.

The operations are collected from the document the code builds (the child serves the same
one, checked in the fixture): schemathesis's lazy loader (from_fixture) does not run on
pytest 9.2, which dropped the private Node._nodeid it sets.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI

from containervps import __version__
from containervps.api.app import ROUTERS
from containervps.api.openapi import document
from containervps.config import Settings
from containervps.errors import Unauthorized
from containervps.lxd import Lxd
from containervps.schemas.quota import QuotaUpdate
from containervps.services.tenancy import tokens
from tests.integration.api_support import ApiProcess, ApiTenant, make_tenant, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

EXAMPLES = int(os.environ.get("CVPS_FUZZ_EXAMPLES", "5"))
SEED = 20261204
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
CHILD_ENV = {
    "CONTAINERVPS_API_MAX_WAIT_SECONDS": "1",  # a generated long poll answers within a second
    "CONTAINERVPS_API_RATE_LIMIT_PER_HOUR": "0",  # every generated request reaches its route
}
QUOTA = QuotaUpdate(
    max_servers=2, max_vcpus=4, max_memory_mib=2048, max_disk_gib=20, max_processes=5000
)


def _valid(settings: Settings, secret: str) -> bool:
    try:
        tokens.authenticate(settings, secret)
    except Unauthorized:
        return False
    return True


@dataclass
class Callers:
    """The tokens the fuzzer sends, made again when a generated request revoked one or deleted
    the tenant (admin routes take any id: DELETE /v1/admin/tokens/1 is a likely example)."""

    settings: Settings
    lxd: Lxd
    admin_secret: str
    tenant: ApiTenant
    remade: int = 0
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)  # by operation, status

    def headers(self, path: str) -> dict[str, str]:
        if path.startswith("/v1/admin/"):
            if not _valid(self.settings, self.admin_secret):
                _, self.admin_secret = tokens.create_token(self.settings, name="fz", is_admin=True)
                self.remade += 1
            return {"Authorization": f"Bearer {self.admin_secret}"}
        if not _valid(self.settings, self.tenant.token):
            self.tenant = make_tenant(self.settings, self.lxd, "fuzz", quota=QUOTA)
            self.remade += 1
        return self.tenant.headers


@dataclass(frozen=True)
class Target:
    api: ApiProcess
    callers: Callers


@pytest.fixture(scope="module")
def target(cp_settings: Settings, ready_host: Lxd) -> Iterator[Target]:
    """The API in a child process, a tenant with a running busybox server, an admin token."""
    _, admin_secret = tokens.create_token(cp_settings, name="fuzz-admin", is_admin=True)
    tenant = make_tenant(cp_settings, ready_host, "fuzz", quota=QUOTA)
    api = ApiProcess(cp_settings, env=CHILD_ENV).start()
    try:
        with httpx.Client(base_url=api.url, headers=tenant.headers, timeout=120) as http:
            body = {"name": "fuzzed", "plan": "nano", "image": "busybox"}
            r = http.post("/v1/servers", json=body)
            assert r.status_code == 202, r.text
            assert wait_action(http, r.json()["action"]["id"], {})["status"] == "success"
        assert httpx.get(f"{api.url}/openapi.json").json() == DOCUMENT  # what it serves
        callers = Callers(cp_settings, ready_host, admin_secret, tenant)
        yield Target(api, callers)
    finally:
        api.stop()
    # What was sent, for the record (pytest -s shows it): by status, and every operation's.
    by_status = Counter(status for (_, status), n in callers.answers.items() for _ in range(n))
    print(f"\nfuzz: {callers.answers.total()} requests, tokens remade {callers.remade} times")
    print(f"fuzz: answers by status {dict(sorted(by_status.items()))}")
    for operation in sorted({op for op, _ in callers.answers}):
        method, path = operation.split(" ", 1)
        if method.lower() in DOCUMENT["paths"][path]:  # not the probes of undocumented methods
            statuses = {s: n for (op, s), n in sorted(callers.answers.items()) if op == operation}
            print(f"fuzz: {operation} {statuses}")


def _document() -> dict[str, Any]:
    """The OpenAPI document create_app serves, built without settings, logging or a database."""
    app = FastAPI(title="containervps", version=__version__)
    for router in ROUTERS:
        app.include_router(router)
    return document(app, routes=[r for router in ROUTERS for r in router.routes])


DOCUMENT = _document()
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "request-timeout": 120,
        "generation": {
            "mode": "all",  # valid and invalid requests
            "max-examples": EXAMPLES,
            "deterministic": True,
            "database": "none",
            "with-security-parameters": False,  # the callers' tokens, not generated ones
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


@schema.parametrize()
def test_generated_requests_get_documented_answers(case: schemathesis.Case, target: Target) -> None:
    headers = target.callers.headers(case.path)
    response = case.call(base_url=target.api.url, headers=headers)
    target.callers.answers[(f"{case.method} {case.path}", response.status_code)] += 1
    case.validate_response(response, headers=headers)
