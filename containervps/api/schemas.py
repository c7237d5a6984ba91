"""Request bodies and the JSON shapes of resources (Hetzner/DigitalOcean style)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from containervps.config import get_settings
from containervps.db.models import Action, ApiToken, Plan, Server, SshKey
from containervps.services.capacity import Usage
from containervps.services.tenants import TenantView

__all__ = [
    "ExecRequest",
    "PlanCreate",
    "ProtectionUpdate",
    "QuotaUpdate",
    "RebuildRequest",
    "ResizeRequest",
    "ServerCreate",
    "SshKeyCreate",
    "TenantCreate",
    "TokenCreate",
    "pagination",
    "render_action",
    "render_plan",
    "render_server",
    "render_ssh_key",
    "render_tenant",
    "render_token",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerCreate(_Strict):
    name: str = Field(max_length=255)
    plan: str = Field(max_length=63)
    image: str = Field(max_length=63)
    labels: dict[str, str] = Field(default_factory=dict)
    ssh_keys: list[str | int] = Field(default_factory=list, max_length=32)


class ExecRequest(_Strict):
    command: list[str] | str  # a string runs with `sh -c`
    timeout: float | None = None


class RebuildRequest(_Strict):
    image: str = Field(max_length=63)


class ResizeRequest(_Strict):
    plan: str = Field(max_length=63)


class ProtectionUpdate(_Strict):
    delete: bool | None = None
    rebuild: bool | None = None


class SshKeyCreate(_Strict):
    name: str = Field(max_length=63)
    public_key: str = Field(max_length=16 * 1024)


class QuotaUpdate(_Strict):
    max_servers: int = Field(ge=1)
    max_vcpus: int = Field(ge=1)
    max_memory_mib: int = Field(ge=1)
    max_disk_gib: int = Field(ge=1)
    max_processes: int = Field(ge=1)
    max_snapshots: int = Field(default=10, ge=1)


class TenantCreate(_Strict):
    name: str = Field(max_length=255)
    quota: QuotaUpdate | None = None


class TokenCreate(_Strict):
    name: str = Field(min_length=1, max_length=100)


class PlanCreate(_Strict):
    name: str = Field(max_length=63)
    description: str = Field(default="", max_length=255)
    vcpus: int = Field(ge=1)
    memory_mib: int = Field(ge=1)
    disk_gib: int = Field(ge=1)
    disk_read_iops: int = Field(ge=1)
    disk_write_iops: int = Field(ge=1)
    net_ingress_mbit: int = Field(ge=1)
    net_egress_mbit: int = Field(ge=1)
    max_processes: int = Field(ge=1)
    transfer_gib: int = Field(ge=1)


def _ts(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def render_action(action: Action) -> dict[str, Any]:
    """An action object: {id, command, status, progress, started, finished, resources, error}."""
    error = None
    if action.status == "error":
        error = {"code": action.error_code, "message": action.error_message}
    return {
        "id": action.id,
        "command": action.command,
        "status": action.status,
        "progress": action.progress,
        "started": _ts(action.started),
        "finished": _ts(action.finished),
        "resources": [{"id": action.server_id, "type": "server"}] if action.server_id else [],
        "error": error,
    }


def render_server(server: Server) -> dict[str, Any]:
    """A server object with its plan limits and whether each is enforced."""
    return {
        "id": server.id,
        "name": server.name,
        "status": server.status,
        "status_detail": server.status_detail,
        "created": _ts(server.created_at),
        "plan": server.plan,
        "image": server.image,
        "labels": server.labels,
        "public_net": {"ipv4": server.ipv4},
        "ssh": {
            "host": get_settings().ssh_listen_address,
            "port": server.ssh_port,
            "user": "root",
        },
        "protection": {"delete": server.delete_protection, "rebuild": server.rebuild_protection},
        "limits": server.limits,
    }


def render_ssh_key(key: SshKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "created": _ts(key.created_at),
    }


def render_plan(plan: Plan) -> dict[str, Any]:
    return plan.model_dump(exclude={"created_at"})


def _usage_block(usage: Usage, quota: Any) -> dict[str, dict[str, int]]:
    return {
        "servers": {"max": quota.max_servers, "used": usage.servers},
        "vcpus": {"max": quota.max_vcpus, "used": usage.vcpus},
        "memory_mib": {"max": quota.max_memory_mib, "used": usage.memory_mib},
        "disk_gib": {"max": quota.max_disk_gib, "used": usage.disk_gib},
        "processes": {"max": quota.max_processes, "used": usage.processes},
    }


def render_tenant(view: TenantView) -> dict[str, Any]:
    return {
        "id": view.tenant.id,
        "name": view.tenant.name,
        "status": view.tenant.status,
        "lxd_project": view.tenant.lxd_project,
        "created": _ts(view.tenant.created_at),
        "limits": _usage_block(view.usage, view.quota),
    }


def render_limits(view: TenantView) -> dict[str, Any]:
    return _usage_block(view.usage, view.quota)


def render_token(token: ApiToken, *, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "tenant_id": token.tenant_id,
        "admin": token.is_admin,
        "created": _ts(token.created_at),
        "revoked": _ts(token.revoked_at),
    }
    if secret is not None:
        out["secret"] = secret  # shown once
    return out


def pagination(*, page: int, per_page: int, total: int) -> dict[str, Any]:
    """The meta.pagination block."""
    last = max(1, -(-total // per_page))
    return {
        "page": page,
        "per_page": per_page,
        "previous_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < last else None,
        "last_page": last,
        "total_entries": total,
    }
