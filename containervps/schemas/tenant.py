"""Tenants: create (with an optional quota) and the public form with limits and usage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from containervps.schemas.bounds import Name
from containervps.schemas.common import Strict, timestamp
from containervps.schemas.quota import QuotaBase, QuotaUpdate, Usage, limits_block

if TYPE_CHECKING:
    from containervps.db.models import Tenant

__all__ = ["TenantCreate", "TenantPublic"]


class TenantCreate(Strict):
    name: Name
    quota: QuotaUpdate | None = None


class TenantPublic(BaseModel):
    id: int
    name: str
    status: str
    lxd_project: str
    created: str | None
    limits: dict[str, dict[str, int]]

    @classmethod
    def of(cls, tenant: Tenant, quota: QuotaBase, usage: Usage) -> TenantPublic:
        assert tenant.id is not None
        return cls(
            id=tenant.id,
            name=tenant.name,
            status=tenant.status,
            lxd_project=tenant.lxd_project,
            created=timestamp(tenant.created_at),
            limits=limits_block(quota, usage),
        )
