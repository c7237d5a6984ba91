"""API tokens: created once in plain text, stored as a SHA-256 hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import ApiToken, Tenant, utcnow
from containervps.errors import InvalidInput, NotFound, Unauthorized

__all__ = ["Identity", "authenticate", "create_token", "list_tokens", "revoke_token"]

TOKEN_PREFIX = "cvps_"
CLI_ACTOR = "cli"


@dataclass(frozen=True)
class Identity:
    """Who is calling: a tenant token, an admin token or the local admin CLI."""

    actor: str  # "token:12" or "cli"
    tenant_id: int | None
    is_admin: bool


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    settings: Settings, *, name: str, tenant_id: int | None = None, is_admin: bool = False
) -> tuple[ApiToken, str]:
    """A new token row and its plain text (shown once, never stored)."""
    if (tenant_id is None) != is_admin:
        raise InvalidInput("a token is either an admin token or belongs to one tenant")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with session_scope(settings, immediate=True) as session:
        if tenant_id is not None:
            tenant = session.get(Tenant, tenant_id)
            if tenant is None or tenant.deleted_at is not None:
                raise NotFound(f"tenant {tenant_id} not found")
        row = ApiToken(
            tenant_id=tenant_id,
            name=name,
            prefix=plain[: len(TOKEN_PREFIX) + 6],
            token_hash=hash_token(plain),
            is_admin=is_admin,
        )
        session.add(row)
        session.flush()
        session.refresh(row)
    return row, plain


def revoke_token(settings: Settings, token_id: int) -> ApiToken:
    """Revoke a token (idempotent)."""
    with session_scope(settings, immediate=True) as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise NotFound(f"token {token_id} not found")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            session.add(row)
        return row


def list_tokens(settings: Settings, *, tenant_id: int | None = None) -> list[ApiToken]:
    """Tokens (without their secret), optionally of one tenant."""
    with session_scope(settings) as session:
        query = select(ApiToken).order_by(col(ApiToken.id))
        if tenant_id is not None:
            query = query.where(ApiToken.tenant_id == tenant_id)
        return list(session.exec(query).all())


def authenticate(settings: Settings, token: str | None) -> Identity:
    """The identity behind a bearer token; Unauthorized for a wrong or revoked one."""
    if not token:
        raise Unauthorized(
            "missing bearer token", resolution="send 'Authorization: Bearer <token>'"
        )
    with session_scope(settings) as session:
        row = session.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).first()
        if row is None or row.revoked_at is not None:
            raise Unauthorized("invalid or revoked token")
        if row.tenant_id is not None:
            tenant = session.get(Tenant, row.tenant_id)
            if tenant is None or tenant.deleted_at is not None:
                raise Unauthorized("invalid or revoked token")
        return Identity(actor=f"token:{row.id}", tenant_id=row.tenant_id, is_admin=row.is_admin)
