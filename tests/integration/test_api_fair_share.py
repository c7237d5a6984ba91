"""Fair sharing through a real `containervps serve`: one tenant holding all its long polls, execs
and consoles open does not hold up another tenant, and its one extra of each gets a 429 that
names the cap."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action
from containervps.lxd import Lxd
from containervps.services.actions import store
from tests.integration.api_support import ApiProcess, make_tenant, wait_action

pytestmark = pytest.mark.usefixtures("cp_settings")

CAP = 4  # the default of each cap
SETTLE = 10.0  # generous: how long a refusal, or another tenant's request, may take
LONG_POLL = 60.0  # the longest wait the API allows by default


def _running_action(settings: Settings, tenant_id: int) -> int:
    """An action that runs until the test finishes it (owned by this live process)."""
    with session_scope(settings, immediate=True) as session:
        action = Action(tenant_id=tenant_id, command="reboot", runner=store.this_runner())
        session.add(action)
        session.flush()
        assert action.id is not None
        return action.id


def _one_refused(answers: list[Future[httpx.Response]]) -> httpx.Response:
    """Of CAP + 1 requests sent at once, exactly one answers (429) while CAP are held."""
    wait(answers, timeout=SETTLE, return_when=FIRST_COMPLETED)
    time.sleep(0.5)  # a second early answer would be a cap not enforced
    done = [f for f in answers if f.done()]
    assert len(done) == 1, [f.result().text for f in done]
    refused = done[0].result()
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == "1" and "RateLimit-Remaining" in refused.headers
    return refused


def _open_console(api: ApiProcess, headers: dict[str, str], sid: int) -> ClientConnection:
    url = api.url.replace("http", "ws", 1) + f"/v1/servers/{sid}/console"
    return connect(url, additional_headers=headers, open_timeout=SETTLE, legacy=True)


def _first_message(ws: ClientConnection) -> str | bytes | None:
    try:
        return ws.recv(timeout=2)
    except TimeoutError:
        return None  # a held console that printed no prompt yet


def test_a_tenant_at_its_caps_does_not_hold_up_another(
    cp_settings: Settings, ready_host: Lxd
) -> None:
    greedy = make_tenant(cp_settings, ready_host, "fair-a")
    other = make_tenant(cp_settings, ready_host, "fair-b")
    api = ApiProcess(cp_settings).start()
    consoles: list[ClientConnection] = []
    gate = f"/tmp/go-{secrets.token_hex(3)}"
    try:
        with (
            httpx.Client(base_url=api.url, timeout=LONG_POLL + 30) as http,
            ThreadPoolExecutor(max_workers=2 * (CAP + 1)) as pool,
        ):
            r = http.post(
                "/v1/servers",
                json={"name": f"fair-{secrets.token_hex(3)}", "plan": "nano", "image": "busybox"},
                headers=greedy.headers,
            )
            assert r.status_code == 202, r.text
            sid, made = r.json()["server"]["id"], r.json()["action"]["id"]
            assert wait_action(http, made, greedy.headers)["status"] == "success"
            held_action = _running_action(cp_settings, greedy.id)

            consoles = [_open_console(api, greedy.headers, sid) for _ in range(CAP + 1)]
            firsts = [_first_message(ws) for ws in consoles]
            texts = [m for m in firsts if isinstance(m, str)]
            assert len(texts) == 1, firsts  # the others got a prompt, or nothing yet
            error = json.loads(texts[0])["error"]
            assert error["code"] == "rate_limit_exceeded"
            assert (error["details"]["limit"], error["details"]["max"]) == (
                "concurrent_consoles",
                CAP,
            )
            refused_ws = consoles.pop(firsts.index(texts[0]))
            with pytest.raises(ConnectionClosed) as closed:
                refused_ws.recv(timeout=SETTLE)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429

            def send(call: Callable[[], httpx.Response]) -> list[Future[httpx.Response]]:
                return [pool.submit(call) for _ in range(CAP + 1)]

            polls = send(
                lambda: http.get(
                    f"/v1/actions/{held_action}",
                    params={"wait": LONG_POLL},
                    headers=greedy.headers,
                )
            )
            refused = _one_refused(polls).json()["error"]
            assert refused["code"] == "rate_limit_exceeded"
            assert (refused["details"]["limit"], refused["details"]["max"]) == (
                "concurrent_long_polls",
                CAP,
            )
            execs = send(
                lambda: http.post(
                    f"/v1/servers/{sid}/exec",
                    json={"command": f"while [ ! -e {gate} ]; do sleep 0.2; done", "timeout": 25},
                    headers=greedy.headers,
                )
            )
            refused = _one_refused(execs).json()["error"]
            assert (refused["details"]["limit"], refused["details"]["max"]) == (
                "concurrent_execs",
                CAP,
            )
            assert f"at most {CAP} execs" in refused["message"]

            # The other tenant meanwhile: list, create and show answer...
            started = time.monotonic()
            listed = http.get("/v1/servers", headers=other.headers)
            assert listed.status_code == 200, listed.text
            created = http.post(
                "/v1/servers",
                json={"name": f"fair-{secrets.token_hex(3)}", "plan": "nano", "image": "busybox"},
                headers=other.headers,
            )
            assert created.status_code == 202, created.text
            other_action = created.json()["action"]["id"]
            shown = http.get(f"/v1/actions/{other_action}", headers=other.headers)
            assert shown.status_code == 200, shown.text
            assert time.monotonic() - started < SETTLE
            # ... while every held request of the first tenant is still open.
            held_polls = [f for f in polls if not f.done()]
            held_execs = [f for f in execs if not f.done()]
            assert (len(held_polls), len(held_execs)) == (CAP, CAP)
            # A plain show is not a long poll: the first tenant still gets it at its caps.
            plain = http.get(f"/v1/actions/{held_action}", headers=greedy.headers)
            assert plain.status_code == 200 and plain.json()["action"]["status"] == "running"
            # The other tenant's own long polls are not the first one's.
            assert wait_action(http, other_action, other.headers)["status"] == "success"

            # Let go: the action ends, a console opens the execs' gate.
            store.finish(cp_settings, held_action)
            consoles[0].send(f"touch {gate}\n".encode())
            for f in held_polls:
                answer = f.result(timeout=SETTLE)
                assert answer.status_code == 200
                assert answer.json()["action"]["status"] == "success"
            for f in held_execs:
                answer = f.result(timeout=SETTLE + 25)
                assert answer.status_code == 200, answer.text
                assert answer.json()["exec"]["exit_code"] == 0
    finally:
        for ws in consoles:
            ws.close()
        api.stop()
