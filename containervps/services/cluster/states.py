"""A host member's state: what the platform may do with it, and how LXD's view maps onto it.

``online`` admits servers; ``draining`` admits none while its servers move away; ``evacuated``
holds none until restored; ``offline`` is a member LXD cannot reach. Draining and evacuated are
the platform's intent and outlive LXD reporting the member online or offline; offline is LXD's
finding about a member the platform holds online.
"""

from __future__ import annotations

from enum import StrEnum

from containervps.errors import Conflict

__all__ = ["MemberState", "check_transition", "observed_state"]


class MemberState(StrEnum):
    ONLINE = "online"
    DRAINING = "draining"
    EVACUATED = "evacuated"
    OFFLINE = "offline"

    @property
    def admits(self) -> bool:
        """New servers may be placed here."""
        return self is MemberState.ONLINE


# From each state, the states the platform may move a member to.
TRANSITIONS: dict[MemberState, frozenset[MemberState]] = {
    MemberState.ONLINE: frozenset({MemberState.DRAINING, MemberState.OFFLINE}),
    # drained (evacuated), drain called off (online), or lost meanwhile
    MemberState.DRAINING: frozenset(
        {MemberState.EVACUATED, MemberState.ONLINE, MemberState.OFFLINE}
    ),
    MemberState.EVACUATED: frozenset({MemberState.ONLINE, MemberState.OFFLINE}),
    # back (online), or an operator draining a member that is still away
    MemberState.OFFLINE: frozenset({MemberState.ONLINE, MemberState.DRAINING}),
}


def check_transition(name: str, *, current: MemberState, new: MemberState) -> None:
    """Refuse a move the state machine does not allow (409 naming both states)."""
    if new == current or new in TRANSITIONS[current]:
        return
    allowed = sorted(s.value for s in TRANSITIONS[current])
    raise Conflict(
        f"host {name} is {current.value}: it cannot become {new.value}",
        details={"host": name, "state": current.value, "allowed": allowed},
    )


def observed_state(lxd_status: str, *, recorded: MemberState | None = None) -> MemberState:
    """The state to record when LXD reports ``lxd_status`` ("Online", "Evacuated",
    "Offline", ...) for a member the platform holds as ``recorded`` (None: not yet)."""
    if recorded in (MemberState.DRAINING, MemberState.EVACUATED):
        # The platform's intent outlives what LXD says: a member drained for maintenance goes
        # away and comes back, and must not be admitting when it does (its servers are still
        # marked unreachable meanwhile, from LXD's status alone).
        return recorded
    if lxd_status == "Evacuated":
        return MemberState.EVACUATED
    if lxd_status != "Online":
        return MemberState.OFFLINE
    return MemberState.ONLINE
