"""Servers: create, rebuild, resize and protection bodies, and the public server object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from containervps.schemas.common import Strict, timestamp

if TYPE_CHECKING:
    from containervps.db.models import Server

__all__ = [
    "ProtectionUpdate",
    "ServerCreate",
    "ServerPublic",
    "ServerRebuild",
    "ServerResize",
]


class ServerCreate(Strict):
    name: str = Field(max_length=255)
    plan: str = Field(max_length=63)
    image: str = Field(max_length=63)
    labels: dict[str, str] = Field(default_factory=dict)
    ssh_keys: list[str | int] = Field(default_factory=list, max_length=32)


class ServerRebuild(Strict):
    image: str = Field(max_length=63)


class ServerResize(Strict):
    plan: str = Field(max_length=63)


class ProtectionUpdate(Strict):
    delete: bool | None = None
    rebuild: bool | None = None


class PublicNet(BaseModel):
    ipv4: str | None


class SshAccess(BaseModel):
    host: str
    port: int | None
    user: str = "root"


class Protection(BaseModel):
    delete: bool
    rebuild: bool


class ServerPublic(BaseModel):
    """A server with its plan limits and whether each is enforced on this host."""

    id: int
    tenant_id: int
    name: str
    status: str
    status_detail: str | None
    created: str | None
    plan: str
    image: str
    labels: dict[str, str]
    public_net: PublicNet
    ssh: SshAccess
    protection: Protection
    limits: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, server: Server, *, ssh_host: str) -> ServerPublic:
        assert server.id is not None
        return cls(
            id=server.id,
            tenant_id=server.tenant_id,
            name=server.name,
            status=server.status,
            status_detail=server.status_detail,
            created=timestamp(server.created_at),
            plan=server.plan,
            image=server.image,
            labels=server.labels,
            public_net=PublicNet(ipv4=server.ipv4),
            ssh=SshAccess(host=ssh_host, port=server.ssh_port),
            protection=Protection(
                delete=server.delete_protection, rebuild=server.rebuild_protection
            ),
            limits=server.limits,
        )
