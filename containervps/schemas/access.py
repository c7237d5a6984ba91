"""Access objects: tenants' SSH keys and API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from containervps.schemas.bounds import Line, Text
from containervps.schemas.common import Strict, timestamp

if TYPE_CHECKING:
    from containervps.db.models import ApiToken, SshKey

__all__ = ["SshKeyCreate", "SshKeyPublic", "TokenCreate", "TokenPublic"]


class SshKeyCreate(Strict):
    name: Line = Field(min_length=1, max_length=63, description="1-63 of A-Z a-z 0-9 . _ @ -")
    public_key: Text = Field(
        min_length=1,
        max_length=16 * 1024,
        description=(
            "One OpenSSH public key line '<type> <base64> [comment]', parsed for real. Types: "
            "ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa (2048 bits or more), "
            "sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com. The comment is "
            "printable text of at most 255 characters. Stored as type, base64 and comment."
        ),
    )


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
    name: Line = Field(min_length=1, max_length=100)


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
