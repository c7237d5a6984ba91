"""Inside a server: exec a command as root, and an interactive console over a websocket."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, Query, Request, Response, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from containervps.api.auth import identify
from containervps.api.deps import FairShareDep, LxdDep, SettingsDep, TenantDep
from containervps.api.errors import error_response, refuse_websocket
from containervps.api.fair_share import CONSOLES, EXECS, FairShare, fair_share
from containervps.api.openapi import errors
from containervps.config import get_settings
from containervps.errors import ContainerVpsError, InvalidInput
from containervps.lxd import InteractiveExec, connect
from containervps.schemas.bounds import Id
from containervps.schemas.guest import ExecRequest
from containervps.schemas.responses import ExecEnvelope
from containervps.services.servers import guest
from containervps.services.tenancy import audit

router = APIRouter(prefix="/v1/servers", tags=["servers"])

CONSOLE_POLL_SECONDS = 0.25

# OpenAPI has no WebSockets; the handshake is this GET with the upgrade headers (RFC 6455).
CONSOLE_PROTOCOL = """A root shell on a pty, over a WebSocket.

Connect with `GET` and the headers `Connection: Upgrade`, `Upgrade: websocket` and
`Authorization: Bearer <tenant token>`. After `101 Switching Protocols`:

- binary frames both ways carry the terminal's bytes;
- a text frame `{"resize": {"width": W, "height": H}}` resizes the pty;
- a refusal after the upgrade (bad token, unknown or stopped server, size out of range, the
  console cap) is one text frame with the error body `{"error": {"code", "message",
  "details"}}`, then a close with code 4000 + the HTTP status (4401, 4404, 4409, 4422, 4429);
- the console hangs up after `console_max_seconds` (close code 1000).

Without the upgrade headers the answer is 426."""


@router.post("/{server_id}/exec", response_model=ExecEnvelope, responses=errors(409))
async def exec_command(
    server_id: Id,
    body: ExecRequest,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,
    fair: FairShareDep,
) -> dict[str, Any]:
    """Run a command as root: stdout, stderr and exit code (bounded in time and output)."""
    command = ["sh", "-c", body.command] if isinstance(body.command, str) else body.command
    request.state.audit_target = f"server:{server_id}"
    run = partial(
        guest.run_command,
        settings,
        lxd,
        server_id=server_id,
        tenant_id=ident.tenant_id,
        command=command,
        timeout=body.timeout,
    )
    with fair.hold(ident, limit=EXECS):  # blocks on the stream: on the guest threads
        outcome = await fair.in_guest_thread(run)
    return {
        "exec": {
            "exit_code": outcome.exit_code,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "seconds": outcome.seconds,
        }
    }


async def _pump_out(websocket: WebSocket, shell: InteractiveExec, fair: FairShare) -> None:
    while True:
        data = await fair.in_guest_thread(partial(shell.recv, CONSOLE_POLL_SECONDS))
        if data is None:
            return
        if data:
            await websocket.send_bytes(data)


async def _pump_in(websocket: WebSocket, shell: InteractiveExec, fair: FairShare) -> None:
    while True:
        try:
            message = await websocket.receive()
        except WebSocketDisconnect:
            return
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes"):
            await fair.in_guest_thread(partial(shell.send, message["bytes"]))
        elif message.get("text"):
            try:
                size = json.loads(message["text"])["resize"]
                width, height = int(size["width"]), int(size["height"])
            except (ValueError, KeyError, TypeError):
                continue  # not a control message we know: ignore it
            await fair.in_guest_thread(partial(shell.resize, width=width, height=height))


@router.get(
    "/{server_id}/console",
    status_code=101,
    summary="Console (WebSocket)",
    description=CONSOLE_PROTOCOL,
    responses={101: {"description": "Switching Protocols: the console runs"}, **errors(426)},
)
def console_handshake(
    request: Request,
    server_id: Id,
    width: int = Query(80, ge=10, le=1000),
    height: int = Query(24, ge=5, le=1000),
) -> Response:
    """The console's handshake; answers 426 when asked without the upgrade."""
    return error_response(
        request,
        status=426,
        code="upgrade_required",
        message="the console is a WebSocket: connect with Upgrade: websocket",
        details={"server_id": server_id},
        headers={"Upgrade": "websocket"},
    )


@router.websocket("/{server_id}/console")
async def console(websocket: WebSocket, server_id: Id, width: int = 80, height: int = 24) -> None:
    """A root shell on a pty: binary frames both ways; text frames {"resize": {width, height}}."""
    settings = get_settings()
    fair = fair_share(websocket)
    await websocket.accept()
    async with AsyncExitStack() as held:  # the console slot and the shell, released in reverse
        try:
            if not (10 <= width <= 1000 and 5 <= height <= 1000):
                raise InvalidInput(
                    "width must be 10-1000 and height 5-1000", details={"field": "size"}
                )
            # The Authenticate middleware checked the token and took a rate-limit token.
            ident = await identify(websocket)
            held.enter_context(fair.hold(ident, limit=CONSOLES))
            lxd = await run_in_threadpool(connect, settings)
            shell_cm = guest.open_shell(
                settings,
                lxd,
                server_id=server_id,
                tenant_id=ident.tenant_id,
                width=width,
                height=height,
            )
            shell = await fair.in_guest_thread(shell_cm.__enter__)
            held.push_async_callback(
                fair.in_guest_thread, partial(shell_cm.__exit__, None, None, None)
            )
        except ContainerVpsError as exc:
            await refuse_websocket(websocket, exc)
            return
        await run_in_threadpool(
            audit.record,
            settings,
            actor=ident.actor,
            tenant_id=ident.tenant_id,
            action="WS /v1/servers/{server_id}/console",
            target=f"server:{server_id}",
            outcome="success",
        )
        broken: list[ContainerVpsError] = []  # the LXD stream failed (lxd/sockets.py)
        with anyio.move_on_after(settings.console_max_seconds):
            async with anyio.create_task_group() as tasks:

                async def run(pump: Any) -> None:
                    try:
                        await pump(websocket, shell, fair)
                    except ContainerVpsError as exc:
                        broken.append(exc)
                    tasks.cancel_scope.cancel()

                tasks.start_soon(run, _pump_out)
                tasks.start_soon(run, _pump_in)
    try:
        if broken:  # told like a refusal: the error body, then close code 4000 + status
            await refuse_websocket(websocket, broken[0])
            return
        await websocket.close(code=1000)
    except (RuntimeError, WebSocketDisconnect, OSError):
        return  # the client already went away
