"""Inside a server: exec a command as root, and an interactive console over a websocket."""

from __future__ import annotations

import json
from typing import Any

import anyio
from fastapi import APIRouter, Request, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from containervps.api.deps import LxdDep, SettingsDep, TenantDep
from containervps.api.errors import status_for
from containervps.config import get_settings
from containervps.errors import ContainerVpsError, InvalidInput
from containervps.lxd import InteractiveExec, connect
from containervps.schemas.guest import ExecRequest
from containervps.services.servers import guest
from containervps.services.tenancy import audit
from containervps.services.tenancy.tokens import authenticate

router = APIRouter(prefix="/v1/servers", tags=["servers"])

CONSOLE_POLL_SECONDS = 0.25


@router.post("/{server_id}/exec")
def exec_command(
    server_id: int,
    body: ExecRequest,
    request: Request,
    ident: TenantDep,
    settings: SettingsDep,
    lxd: LxdDep,
) -> dict[str, Any]:
    """Run a command as root: stdout, stderr and exit code (bounded in time and output)."""
    command = ["sh", "-c", body.command] if isinstance(body.command, str) else body.command
    request.state.audit_target = f"server:{server_id}"
    outcome = guest.run_command(
        settings,
        lxd,
        server_id=server_id,
        tenant_id=ident.tenant_id,
        command=command,
        timeout=body.timeout,
    )
    return {
        "exec": {
            "exit_code": outcome.exit_code,
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "seconds": outcome.seconds,
        }
    }


async def _pump_out(websocket: WebSocket, shell: InteractiveExec) -> None:
    while True:
        data = await run_in_threadpool(shell.recv, CONSOLE_POLL_SECONDS)
        if data is None:
            return
        if data:
            await websocket.send_bytes(data)


async def _pump_in(websocket: WebSocket, shell: InteractiveExec) -> None:
    while True:
        try:
            message = await websocket.receive()
        except WebSocketDisconnect:
            return
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes"):
            await run_in_threadpool(shell.send, message["bytes"])
        elif message.get("text"):
            try:
                size = json.loads(message["text"])["resize"]
                width, height = int(size["width"]), int(size["height"])
            except (ValueError, KeyError, TypeError):
                continue  # not a control message we know: ignore it
            await run_in_threadpool(shell.resize, width=width, height=height)


@router.websocket("/{server_id}/console")
async def console(websocket: WebSocket, server_id: int, width: int = 80, height: int = 24) -> None:
    """A root shell on a pty: binary frames both ways; text frames {"resize": {width, height}}."""
    settings = get_settings()
    await websocket.accept()
    scheme, _, token = (websocket.headers.get("authorization") or "").partition(" ")
    try:
        if not (10 <= width <= 1000 and 5 <= height <= 1000):
            raise InvalidInput("width must be 10-1000 and height 5-1000", details={"field": "size"})
        ident = await run_in_threadpool(
            authenticate, settings, token.strip() if scheme.lower() == "bearer" else None
        )
        lxd = await run_in_threadpool(connect, settings)
        shell_cm = guest.open_shell(
            settings,
            lxd,
            server_id=server_id,
            tenant_id=ident.tenant_id,
            width=width,
            height=height,
        )
        shell = await run_in_threadpool(shell_cm.__enter__)
    except ContainerVpsError as exc:
        body = {"error": {"code": exc.code, "message": exc.brief, "details": exc.details}}
        await websocket.send_text(json.dumps(body, default=str))
        await websocket.close(code=4000 + status_for(exc), reason=exc.code)
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
    try:
        with anyio.move_on_after(settings.console_max_seconds):
            async with anyio.create_task_group() as tasks:

                async def run(pump: Any) -> None:
                    await pump(websocket, shell)
                    tasks.cancel_scope.cancel()

                tasks.start_soon(run, _pump_out)
                tasks.start_soon(run, _pump_in)
    finally:
        await run_in_threadpool(shell_cm.__exit__, None, None, None)
    try:
        await websocket.close(code=1000)
    except RuntimeError:
        return  # the client already went away
