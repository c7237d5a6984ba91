"""What each route answers: resources keyed by name (``{"server": ...}``), lists with
``meta.pagination`` where they are paged, and the probes. The routes' ``response_model``s, so
the OpenAPI document describes the wire."""

from __future__ import annotations

from pydantic import BaseModel, Field

from containervps.schemas.access import SshKeyPublic, TokenPublic
from containervps.schemas.action import ActionPublic
from containervps.schemas.capacity import CapacityPublic
from containervps.schemas.common import Pagination
from containervps.schemas.event import EventPublic
from containervps.schemas.firewall import FirewallPublic
from containervps.schemas.guest import ExecResult
from containervps.schemas.host import HostPublic
from containervps.schemas.image import ImagePublic
from containervps.schemas.limit_hits import LimitHits, ServerHits
from containervps.schemas.plan import PlanPublic
from containervps.schemas.server import ServerAdmin, ServerPublic
from containervps.schemas.snapshot import SnapshotPublic
from containervps.schemas.tenant import TenantPublic
from containervps.schemas.usage import LimitUsage, MetricsPublic, MonthlyUsage

__all__ = [
    "ActionEnvelope",
    "ActionList",
    "ActionWithPassword",
    "AdminServerList",
    "CapacityEnvelope",
    "EventList",
    "ExecEnvelope",
    "FirewallEnvelope",
    "FirewallList",
    "Health",
    "HostDrain",
    "HostEnvelope",
    "HostList",
    "ImageList",
    "LimitHitsEnvelope",
    "LimitHitsList",
    "LimitsEnvelope",
    "ListMeta",
    "MetricsEnvelope",
    "PlanEnvelope",
    "PlanList",
    "Readiness",
    "ServerCreated",
    "ServerEnvelope",
    "ServerList",
    "SnapshotEnvelope",
    "SnapshotList",
    "SshKeyEnvelope",
    "SshKeyList",
    "TenantEnvelope",
    "TenantList",
    "TokenEnvelope",
    "UsageEnvelope",
]

ROOT_PASSWORD = "Generated when no SSH keys were given: shown in this answer only, stored nowhere"


class ListMeta(BaseModel):
    pagination: Pagination


class ServerEnvelope(BaseModel):
    server: ServerPublic


class ServerList(BaseModel):
    servers: list[ServerPublic]
    meta: ListMeta


class AdminServerList(BaseModel):
    servers: list[ServerAdmin]
    meta: ListMeta


class ServerCreated(BaseModel):
    """A create was admitted: the server (initializing) and the action building it."""

    server: ServerPublic
    action: ActionPublic
    root_password: str | None = Field(description=ROOT_PASSWORD)


class FirewallEnvelope(BaseModel):
    firewall: FirewallPublic


class FirewallList(BaseModel):
    firewalls: list[FirewallPublic]
    meta: ListMeta


class ActionEnvelope(BaseModel):
    action: ActionPublic


class ActionWithPassword(BaseModel):
    """A rebuild was admitted: its action and the new disk's root password."""

    action: ActionPublic
    root_password: str | None = Field(description=ROOT_PASSWORD)


class ActionList(BaseModel):
    actions: list[ActionPublic]


class ExecEnvelope(BaseModel):
    exec: ExecResult


class CapacityEnvelope(BaseModel):
    capacity: CapacityPublic


class EventEnvelope(BaseModel):
    event: EventPublic


class EventList(BaseModel):
    events: list[EventPublic]
    meta: ListMeta


class SnapshotEnvelope(BaseModel):
    snapshot: SnapshotPublic


class SnapshotList(BaseModel):
    snapshots: list[SnapshotPublic]


class SshKeyEnvelope(BaseModel):
    ssh_key: SshKeyPublic


class SshKeyList(BaseModel):
    ssh_keys: list[SshKeyPublic]


class PlanEnvelope(BaseModel):
    plan: PlanPublic


class PlanList(BaseModel):
    plans: list[PlanPublic]


class ImageList(BaseModel):
    images: list[ImagePublic]


class LimitsEnvelope(BaseModel):
    limits: dict[str, LimitUsage] = Field(description="Each quota by resource: max and used")


class LimitHitsEnvelope(BaseModel):
    limit_hits: LimitHits


class LimitHitsList(BaseModel):
    servers: list[ServerHits]
    meta: ListMeta


class MetricsEnvelope(BaseModel):
    metrics: MetricsPublic


class UsageEnvelope(BaseModel):
    usage: MonthlyUsage


class HostEnvelope(BaseModel):
    host: HostPublic


class HostDrain(BaseModel):
    """A drain was accepted: the host (draining; evacuated when it held nothing) and the
    move of each of its servers, in the order they run."""

    host: HostPublic
    actions: list[ActionPublic]


class HostList(BaseModel):
    hosts: list[HostPublic]


class TenantEnvelope(BaseModel):
    tenant: TenantPublic


class TenantList(BaseModel):
    tenants: list[TenantPublic]


class TokenEnvelope(BaseModel):
    token: TokenPublic


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    lxd: str = Field(description="The LXD server version")
