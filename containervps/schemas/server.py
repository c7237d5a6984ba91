"""Servers: create, rebuild, resize and protection bodies, and the public server object."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, WithJsonSchema

from containervps.schemas.bounds import ID, MAX_NAME, Name, Short, check_line, check_name
from containervps.schemas.common import Strict, timestamp

if TYPE_CHECKING:
    from containervps.db.models import Server

__all__ = [
    "LabelSelector",
    "ProtectionUpdate",
    "ServerAdmin",
    "ServerCreate",
    "ServerPublic",
    "ServerRebuild",
    "ServerResize",
    "ServerUpdate",
]


def _key_ref(value: int | str) -> int | str:
    return ID.check(value) if isinstance(value, int) else check_name(value)


# A stored SSH key by id or by name (one error naming the field, not one per union member).
KeyRef = Annotated[
    int | str,
    AfterValidator(_key_ref),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": ID.low, "maximum": ID.high},
                {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
            ]
        }
    ),
]
# `key=value` or `key` terms, comma-separated: room for every label a server may have.
LabelSelector = Annotated[
    str, StringConstraints(max_length=32 * (2 * MAX_NAME + 2)), AfterValidator(check_line)
]


class ServerCreate(Strict):
    name: Name
    plan: Name
    image: Name
    labels: dict[Name, Short] = Field(default_factory=dict, max_length=32)
    ssh_keys: list[KeyRef] = Field(default_factory=list, max_length=32)


class ServerUpdate(Strict):
    """A PUT on a server: the labels given replace the stored ones."""

    labels: dict[Name, Short] = Field(max_length=32)


class ServerRebuild(Strict):
    image: Name


class ServerResize(Strict):
    plan: Name


class ProtectionUpdate(Strict):
    delete: bool | None = None
    rebuild: bool | None = None


class PublicNet(BaseModel):
    ipv4: str | None
    ipv6: str | None


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
            public_net=PublicNet(ipv4=server.ipv4, ipv6=server.ipv6),
            ssh=SshAccess(host=ssh_host, port=server.ssh_port),
            protection=Protection(
                delete=server.delete_protection, rebuild=server.rebuild_protection
            ),
            limits=server.limits,
        )


class ServerAdmin(ServerPublic):
    """A server as operators see it: also the cluster member it runs on (None: one host)."""

    member: str | None

    @classmethod
    def of_admin(cls, server: Server, *, ssh_host: str) -> ServerAdmin:
        public = ServerPublic.of(server, ssh_host=ssh_host)
        return cls(**public.model_dump(), member=server.member)
