"""Access objects: tenants' SSH keys and API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from containervps.schemas.common import Strict, timestamp

if TYPE_CHECKING:
    from containervps.db.models import ApiToken, SshKey

__all__ = ["SshKeyCreate", "SshKeyPublic", "TokenCreate", "TokenPublic"]


class SshKeyCreate(Strict):
    name: str = Field(max_length=63)
    public_key: str = Field(max_length=16 * 1024)


class SshKeyPublic(BaseModel):
    id: int
    name: str
    fingerprint: str
    public_key: str
    created: str | None

    @classmethod
    def of(cls, key: SshKey) -> SshKeyPublic:
        assert key.id is not None
        return cls(
            id=key.id,
            name=key.name,
            fingerprint=key.fingerprint,
            public_key=key.public_key,
            created=timestamp(key.created_at),
        )


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=100)


class TokenPublic(BaseModel):
    id: int
    name: str
    prefix: str
    tenant_id: int | None
    admin: bool
    created: str | None
    revoked: str | None
    secret: str | None = None  # only in the answer that made it: shown once

    @classmethod
    def of(cls, token: ApiToken, *, secret: str | None = None) -> TokenPublic:
        assert token.id is not None
        return cls(
            id=token.id,
            name=token.name,
            prefix=token.prefix,
            tenant_id=token.tenant_id,
            admin=token.is_admin,
            created=timestamp(token.created_at),
            revoked=timestamp(token.revoked_at),
            secret=secret,
        )
