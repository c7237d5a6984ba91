"""Read-only catalogue for tenants: plans, images, the caller's limits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from containervps.api.deps import IdentityDep, LxdDep, SettingsDep, TenantDep
from containervps.schemas.plan import PlanPublic
from containervps.schemas.quota import limits_block
from containervps.schemas.responses import ImageList, LimitsEnvelope, PlanList
from containervps.services.images.service import ImageService
from containervps.services.tenancy import plans, tenants

router = APIRouter(prefix="/v1", tags=["catalogue"])


@router.get("/plans", response_model=PlanList)
def list_plans(_: IdentityDep, settings: SettingsDep) -> dict[str, Any]:
    """Every plan with all its limits."""
    return {"plans": [PlanPublic.of(p).model_dump() for p in plans.list_plans(settings)]}


@router.get("/images", response_model=ImageList)
def list_images(_: IdentityDep, settings: SettingsDep, lxd: LxdDep) -> dict[str, Any]:
    """Images ready to boot on this host."""
    listing = ImageService(settings, lxd).list()
    return {
        "images": [
            {
                "name": i.name,
                "os": i.os,
                "release": i.release,
                "description": i.description,
                "size_bytes": i.size_bytes,
            }
            for i in listing
            if i.in_lxd
        ]
    }


@router.get("/limits", response_model=LimitsEnvelope)
def limits(ident: TenantDep, settings: SettingsDep) -> dict[str, Any]:
    """The caller's quota and what it uses now."""
    assert ident.tenant_id is not None
    view = tenants.get_tenant(settings, ident.tenant_id)
    return {"limits": limits_block(view.quota, view.usage)}
