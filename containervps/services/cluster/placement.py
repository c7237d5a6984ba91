"""Placement: which recorded cluster member a new server goes to.

With no member recorded (``host_member`` empty) there is nothing to place: the platform is a
single host and admission checks its one capacity (``place`` returns None). With members,
each create runs, inside the create's BEGIN IMMEDIATE transaction (so two creates never pick
the same last room):

1. members whose state is not ``online`` are skipped (draining, evacuated, offline);
2. a member is skipped when the plan does not fit in what it may sell, by the single host's
   rules (``admission.host_shortfall``): the member's CPU threads, memory and disk (recorded
   by ``host join``) times ``cpu_overcommit``, ``memory_overcommit`` and ``disk_overcommit``,
   at most ``max_containers`` servers, against the sold limits of the live servers recorded on
   that member (disk IOPS are not measured per member: not checked);
3. of the rest, the best has the most memory free after overcommit, then the most disk free,
   then the fewest servers, then the first name.

None fits: ``resource_unavailable`` whose details name every member and why it was skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.models import HostMember, Server
from containervps.errors import ResourceUnavailable
from containervps.schemas.quota import Usage
from containervps.services.capacity import admission
from containervps.services.cluster.states import MemberState

__all__ = ["Candidate", "admit_on_member", "choose", "member_capacity", "place", "place_server"]


@dataclass(frozen=True)
class Candidate:
    """A member with room for the plan: what it would have free after taking it."""

    name: str
    memory_mib_free: int
    disk_gib_free: int
    servers: int

    def score(self) -> tuple[int, int, int, str]:
        """Lower is better: most memory free, then disk, then fewest servers, then name."""
        return (-self.memory_mib_free, -self.disk_gib_free, self.servers, self.name)


def member_capacity(settings: Settings, member: HostMember) -> admission.HostCapacity:
    """What a member may sell: its recorded resources times the host's overcommit ratios."""
    return admission.HostCapacity(
        servers=settings.max_containers,
        vcpus=int(member.cpu * settings.cpu_overcommit),
        memory_mib=int(member.memory_mib * settings.memory_overcommit),
        disk_gib=int(member.disk_gib * settings.disk_overcommit),
    )


def _fit(
    session: Session,
    settings: Settings,
    member: HostMember,
    *,
    want: Usage,
    want_iops: admission.Iops,
) -> tuple[admission.HostCapacity, Usage, admission.Shortfall | None]:
    """The member's capacity, what its servers use, and what ``want`` would lack there."""
    capacity = member_capacity(settings, member)
    used = admission.usage(session, member=member.name)
    held = admission.iops_held(session, member=member.name)
    short = admission.host_shortfall(capacity, used=used, held=held, want=want, want_iops=want_iops)
    return capacity, used, short


def _judge(
    session: Session,
    settings: Settings,
    member: HostMember,
    *,
    want: Usage,
    want_iops: admission.Iops,
) -> Candidate | dict[str, Any]:
    """The member as a candidate, or why it is skipped."""
    if not MemberState(member.state).admits:
        return {"reason": member.state}
    capacity, used, short = _fit(session, settings, member, want=want, want_iops=want_iops)
    if short is not None:
        return {"reason": short.what, **short.details()}
    return Candidate(
        name=member.name,
        memory_mib_free=capacity.memory_mib - used.memory_mib - want.memory_mib,
        disk_gib_free=capacity.disk_gib - used.disk_gib - want.disk_gib,
        servers=used.servers,
    )


def admit_on_member(
    session: Session,
    settings: Settings,
    *,
    member: str,
    want: Usage,
    want_iops: admission.Iops = admission.Iops(),
) -> None:
    """Refuse ``want`` more on ``member`` past what it may sell (a resize of a server placed
    there; a shrink always fits). A member no longer recorded is not checked."""
    row = session.get(HostMember, member)
    if row is None:
        return
    _, _, short = _fit(session, settings, row, want=want, want_iops=want_iops)
    if short is not None:
        raise ResourceUnavailable(
            f"host member {member} is full: {short.what} free {short.free}, "
            f"requested {short.requested}",
            details={**short.details(), "member": member},
            resolution="try a smaller plan; the operator can move the server to another member",
        )


def choose(candidates: list[Candidate]) -> Candidate | None:
    """The best candidate by ``Candidate.score`` (None: there is none)."""
    return min(candidates, key=Candidate.score, default=None)


def place_server(session: Session, settings: Settings, server: Server, *, exclude: str) -> str:
    """Where an existing server would go off member ``exclude``: placed as a create of its
    size would be (ResourceUnavailable naming each member when none fits)."""
    target = place(
        session,
        settings,
        want=admission.reservation(server),
        want_iops=admission.Iops.of(server),
        exclude=exclude,
    )
    if target is None:
        raise ResourceUnavailable(
            "no cluster member is recorded: there is nowhere to move to",
            details={"resource": "host_member", "members": {}},
        )
    return target


def place(
    session: Session,
    settings: Settings,
    *,
    want: Usage,
    want_iops: admission.Iops,
    exclude: str | None = None,
) -> str | None:
    """The member a new server holding ``want`` goes to; None when no member is recorded.
    ``exclude``: a member never chosen (the one a moved server leaves).

    Call inside the create's BEGIN IMMEDIATE transaction, before the server row is added.
    """
    rows = session.exec(select(HostMember).order_by(col(HostMember.name))).all()
    if not rows:
        return None
    candidates: list[Candidate] = []
    skipped: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.name == exclude:
            skipped[row.name] = {"reason": "moving away from it"}
            continue
        judged = _judge(session, settings, row, want=want, want_iops=want_iops)
        if isinstance(judged, Candidate):
            candidates.append(judged)
        else:
            skipped[row.name] = judged
    best = choose(candidates)
    if best is None:
        why = "; ".join(f"{name}: {s['reason']}" for name, s in skipped.items())
        raise ResourceUnavailable(
            f"no host member has room for this plan ({why})",
            details={"resource": "host_member", "members": skipped},
            resolution="try a smaller plan or later; the operator can add or restore a member",
        )
    return best.name
