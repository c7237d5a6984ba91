"""Firewalls (Hetzner Cloud's shape): rules, what they apply to, the public firewall object.

The field shapes are checked here; what depends on each other or on the database (CIDRs,
ports per protocol, the rule count, server ids) is checked by services/firewalls/rules.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from containervps.schemas.bounds import Id, Name, Short
from containervps.schemas.common import Strict, timestamp
from containervps.schemas.server import LabelSelector

if TYPE_CHECKING:
    from containervps.db.models import Firewall

__all__ = [
    "ApplyTo",
    "FirewallCreate",
    "FirewallPublic",
    "FirewallRule",
    "FirewallUpdate",
    "LabelSelectorRef",
    "ServerRef",
]

MAX_ADDRESSES = 100  # CIDRs per rule (Hetzner's cap)
MAX_TARGETS = 100  # apply_to entries per firewall
Cidr = Annotated[str, StringConstraints(max_length=64)]
Port = Annotated[str, StringConstraints(max_length=11)]  # "80" or "1000-2000"


class FirewallRule(Strict):
    direction: Literal["in", "out"]
    protocol: Literal["tcp", "udp", "icmp", "icmpv6", "any"]
    port: Port | None = None
    source_ips: list[Cidr] = Field(default_factory=list, max_length=MAX_ADDRESSES)
    destination_ips: list[Cidr] = Field(default_factory=list, max_length=MAX_ADDRESSES)
    description: Short | None = None


class ServerRef(Strict):
    id: Id


class LabelSelectorRef(Strict):
    selector: LabelSelector


class ApplyTo(Strict):
    type: Literal["server", "label_selector"]
    server: ServerRef | None = None
    label_selector: LabelSelectorRef | None = None


class FirewallCreate(Strict):
    name: Name
    labels: dict[Name, Short] = Field(default_factory=dict, max_length=32)
    rules: list[FirewallRule] = Field(default_factory=list)
    apply_to: list[ApplyTo] = Field(default_factory=list, max_length=MAX_TARGETS)


class FirewallUpdate(Strict):
    """A PUT: the fields given replace the stored ones."""

    name: Name | None = None
    labels: dict[Name, Short] | None = Field(default=None, max_length=32)
    rules: list[FirewallRule] | None = None
    apply_to: list[ApplyTo] | None = Field(default=None, max_length=MAX_TARGETS)


class FirewallPublic(BaseModel):
    """A firewall with its rules, its targets and the servers they select now."""

    id: int
    name: str
    labels: dict[str, str]
    created: str | None
    rules: list[dict[str, Any]]
    apply_to: list[dict[str, Any]]
    applied_to_servers: list[int]

    @classmethod
    def of(cls, firewall: Firewall, *, servers: list[int]) -> FirewallPublic:
        assert firewall.id is not None
        return cls(
            id=firewall.id,
            name=firewall.name,
            labels=firewall.labels,
            created=timestamp(firewall.created_at),
            rules=firewall.rules,
            apply_to=firewall.apply_to,
            applied_to_servers=servers,
        )
