"""Table models. Every schema change comes with an Alembic migration in migrations/versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from containervps.schemas.plan import PlanBase
from containervps.schemas.quota import QuotaBase


class Image(SQLModel, table=True):
    """An OS image offered to tenants (built on this host or copied from a remote)."""

    name: str = Field(primary_key=True, max_length=63)
    os: str
    release: str
    description: str
    source: str  # busybox | debootstrap | remote
    fingerprint: str = Field(index=True)
    size_bytes: int
    build_seconds: float
    built_at: datetime


def utcnow() -> datetime:
    """Aware UTC now (SQLModel stores UTC and gives it back aware)."""
    return datetime.now(UTC)


class HostMember(SQLModel, table=True):
    """An LXD cluster member the platform runs servers on (none recorded: single-host mode)."""

    __tablename__ = "host_member"

    name: str = Field(primary_key=True, max_length=63)  # the member's LXD server name
    url: str  # https://<address>:<port>, as LXD reports it
    state: str = "online"  # online | draining | evacuated | offline (services/cluster/states.py)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    cpu: int  # CPU threads of its machine
    memory_mib: int  # memory of its machine
    disk_gib: int  # its share of the platform's storage pool (or its disks without one)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Tenant(SQLModel, table=True):
    """A customer; owns one restricted LXD project."""

    __table_args__ = (
        Index("ix_tenant_name_live", "name", unique=True, sqlite_where=text("deleted_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=63)
    lxd_project: str = Field(unique=True)
    status: str = "active"  # active | deleted
    created_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = None


class Quota(QuotaBase, table=True):
    """What one tenant may hold at once (mirrored into its LXD project's limits.*)."""

    tenant_id: int = Field(primary_key=True, foreign_key="tenant.id")


class ApiToken(SQLModel, table=True):
    """A bearer token; only its SHA-256 is stored. Admin tokens have no tenant."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int | None = Field(default=None, foreign_key="tenant.id", index=True)
    name: str
    prefix: str  # the first characters, to recognise a token in listings
    token_hash: str = Field(unique=True)
    is_admin: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class Plan(PlanBase, table=True):
    """A server size: every limit a VPS gets."""

    name: str = Field(primary_key=True, max_length=63)
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None  # out of the catalogue; servers on it keep it


class Server(SQLModel, table=True):
    """A VPS: one LXD container in its tenant's project. Rows are soft-deleted."""

    __table_args__ = (
        Index(
            "ix_server_tenant_name_live",
            "tenant_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
        ),
        Index(
            "ix_server_ssh_port_live",
            "ssh_port",
            unique=True,
            sqlite_where=text("deleted_at IS NULL AND ssh_port IS NOT NULL"),
        ),
        Index(
            "ix_server_ipv4_live",
            "ipv4",
            unique=True,
            sqlite_where=text("deleted_at IS NULL AND ipv4 IS NOT NULL"),
        ),
        Index(
            "ix_server_ipv6_live",
            "ipv6",
            unique=True,
            sqlite_where=text("deleted_at IS NULL AND ipv6 IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    name: str = Field(max_length=63)
    plan: str = Field(foreign_key="plan.name")
    image: str
    status: str = Field(index=True)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    lxd_project: str
    lxd_name: str
    # The reservation this server holds against quota and host capacity.
    vcpus: int
    memory_mib: int
    disk_gib: int
    processes: int
    limits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ipv4: str | None = None  # fixed at create (services/servers/addresses.py)
    ipv6: str | None = None  # fixed at create: SLAAC address of the NIC's fixed MAC
    status_detail: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = Field(default=None, index=True)
    # The host port forwarded to the VPS's port 22 (unique among live servers).
    ssh_port: int | None = None
    # authorized_keys lines, copied at create: rebuilds install them again.
    ssh_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    delete_protection: bool = False
    rebuild_protection: bool = False
    # The LXD cluster member it was placed on (services/cluster/placement.py); None: one host.
    member: str | None = Field(default=None, max_length=63, index=True)


class Firewall(SQLModel, table=True):
    """A tenant's firewall: rules, and the servers it applies to (by id or label selector).

    ``rules`` and ``apply_to`` are stored as the API shows them (schemas/firewall.py).
    """

    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_firewall_tenant_name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    name: str = Field(max_length=63)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    rules: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    apply_to: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow)


class Snapshot(SQLModel, table=True):
    """A point-in-time copy of a server's disk (an LXD snapshot of its container)."""

    __table_args__ = (UniqueConstraint("server_id", "name", name="uq_snapshot_server_name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    server_id: int = Field(foreign_key="server.id", index=True)
    name: str = Field(max_length=63)
    status: str = "creating"  # creating | available | restoring
    created_at: datetime = Field(default_factory=utcnow)


class Event(SQLModel, table=True):
    """Something the platform saw or did to a server that its tenant should know about
    (an OOM kill inside it, an lxcfs repair, a rolled-back restore)."""

    __table_args__ = (
        Index("ix_event_tenant_id", "tenant_id", "id"),
        Index("ix_event_server_id", "server_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id")
    server_id: int | None = Field(default=None, foreign_key="server.id")
    type: str = Field(max_length=63)  # e.g. server.oom_kill
    severity: str = "info"  # info | warning | error
    message: str
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow)


class ServerWatch(SQLModel, table=True):
    """What the kernel watch last saw of a server: OOM kills counted and the kernel log read."""

    __tablename__ = "server_watch"

    server_id: int = Field(foreign_key="server.id", primary_key=True)
    oom_kills: int = 0  # the memory cgroup's oom_kill counters, summed, at the last check
    log_seq: int = -1  # the last kernel log record read for it
    checked_at: datetime = Field(default_factory=utcnow)


class UsageSample(SQLModel, table=True):
    """What one server used, read from LXD at one moment (counters are cumulative)."""

    __tablename__ = "usage_sample"
    __table_args__ = (Index("ix_usage_sample_server_at", "server_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    server_id: int = Field(foreign_key="server.id")
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    cpu_seconds: float  # since the container started (resets on restart)
    memory_bytes: int
    disk_bytes: int
    net_rx_bytes: int  # received by the server since its NIC came up
    net_tx_bytes: int  # sent by the server
    # Growth since the server's previous sample (a counter that dropped restarted from zero):
    # sums of these stay exact when old samples are rolled up.
    cpu_delta: float = 0.0
    rx_delta: int = 0
    tx_delta: int = 0


class UsageRollup(SQLModel, table=True):
    """Samples of one server in one hour or month, summed (raw samples are rolled up into
    hours after a while, hours into months later; months are kept)."""

    __tablename__ = "usage_rollup"
    __table_args__ = (
        UniqueConstraint("server_id", "period", "start", name="uq_usage_rollup_bucket"),
        Index("ix_usage_rollup_tenant_period_start", "tenant_id", "period", "start"),
    )

    id: int | None = Field(default=None, primary_key=True)
    server_id: int = Field(foreign_key="server.id")
    tenant_id: int = Field(foreign_key="tenant.id")
    period: str = Field(max_length=8)  # hour | month
    start: datetime
    samples: int
    cpu_seconds: float  # growth within the bucket
    net_rx_bytes: int
    net_tx_bytes: int
    memory_bytes_max: int
    disk_bytes_last: int


class SshKey(SQLModel, table=True):
    """A tenant's OpenSSH public key, installed into root's authorized_keys on request."""

    __tablename__ = "ssh_key"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_ssh_key_tenant_name"),
        UniqueConstraint("tenant_id", "fingerprint", name="uq_ssh_key_tenant_fingerprint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    name: str = Field(max_length=63)
    fingerprint: str
    public_key: str
    created_at: datetime = Field(default_factory=utcnow)


class Action(SQLModel, table=True):
    """Long work (create, delete, power) and its outcome."""

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    server_id: int | None = Field(default=None, foreign_key="server.id", index=True)
    command: str
    status: str = Field(default="running", index=True)  # running | success | error
    progress: int = 0
    started: datetime = Field(default_factory=utcnow)
    finished: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    runner: str | None = None  # "<pid>:<start time>" of the process running it
    # What the action needs beyond the server (rebuild: image; resize: plans).
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class IdempotencyKey(SQLModel, table=True):
    """The first response to an Idempotency-Key, returned again for a repeated key."""

    __tablename__ = "idempotency_key"

    __table_args__ = (UniqueConstraint("tenant_id", "key", name="uq_idempotency_tenant_key"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id")
    key: str = Field(max_length=255)
    request_hash: str
    status_code: int
    response: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class AuditLog(SQLModel, table=True):
    """One row per mutating call: who, what, target, outcome, request id."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str
    tenant_id: int | None = Field(default=None, index=True)
    action: str
    target: str | None = None
    outcome: str
    status_code: int | None = None
    request_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Orphan(SQLModel, table=True):
    """A tagged LXD instance with no live server row, first seen at ``first_seen``."""

    __table_args__ = (UniqueConstraint("lxd_project", "lxd_name", name="uq_orphan_instance"),)

    id: int | None = Field(default=None, primary_key=True)
    lxd_project: str
    lxd_name: str
    server_id: str | None = None  # the tag's value
    first_seen: datetime = Field(default_factory=utcnow)


class BenchRun(SQLModel, table=True):
    """One benchmark run (density or scale): its parameters, outcome, headline figures and
    report dir."""

    __tablename__ = "bench_run"

    id: str = Field(primary_key=True, max_length=63)  # the run id
    kind: str = "density"
    status: str = Field(default="running", index=True)  # running | success | failed | interrupted
    workload: str
    kinds: str  # comma-separated: lxd,docker,vm (density) or api,raw (scale)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    report_dir: str
    error: str | None = None
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC), index=True)
    finished_at: datetime | None = None
