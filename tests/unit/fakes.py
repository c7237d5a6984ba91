"""Fakes and helpers of the unit tests on a migrated SQLite file (no LXD)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Image, Quota, Server, Tenant, utcnow
from containervps.services.actions.intake import Accepted
from containervps.services.servers.create import create_server


class FakeHost:
    def server_info(self) -> None:
        return None

    def get_pool(self, name: str) -> None:
        return None  # capacity then measures the root filesystem

    def pool_resources(self, name: str) -> dict[str, Any]:
        return {"space": {"total": 400 * 2**30}}  # the shared pool: 400 GiB


class FakeLxd:
    """Only what admission touches: LXD answers and the size of the shared pool."""

    host = FakeHost()


def make_tenant(s: Settings, *, max_servers: int = 3) -> int:
    with session_scope(s) as session:
        t = Tenant(name=f"t{time.monotonic_ns()}", lxd_project="p")
        session.add(t)
        session.flush()
        assert t.id is not None
        t.lxd_project = f"cvps-t-{t.id}"
        room = max(4, max_servers)
        session.add(
            Quota(
                tenant_id=t.id,
                max_servers=max_servers,
                max_vcpus=room,
                max_memory_mib=256 * room,
                max_disk_gib=2 * room + 2,
                max_processes=256 * room,
            )
        )
        if session.get(Image, "busybox") is None:
            session.add(
                Image(
                    name="busybox",
                    os="busybox",
                    release="1",
                    description="",
                    source="busybox",
                    fingerprint="f" * 64,
                    size_bytes=1,
                    build_seconds=0.1,
                    built_at=utcnow(),
                )
            )
        return t.id


def create(s: Settings, tenant_id: int, name: str, **kw: Any) -> Accepted:
    args: dict[str, Any] = {"plan": "nano", "image": "busybox", **kw}
    return create_server(s, FakeLxd(), tenant_id=tenant_id, name=name, **args)  # type: ignore[arg-type]


def add_server(
    session: Session, tenant_id: int, name: str, *, deleted: bool = False, **fields: Any
) -> Server:
    """A running nano server row (no container) with ``fields`` set; soft-deleted if asked."""
    server = Server(
        tenant_id=tenant_id,
        name=name,
        plan="nano",
        image="busybox",
        status="running",
        lxd_project="p",
        lxd_name=name,
        vcpus=1,
        memory_mib=1,
        disk_gib=1,
        processes=1,
        deleted_at=datetime.now(UTC) if deleted else None,
        **fields,
    )
    session.add(server)
    session.flush()
    return server
