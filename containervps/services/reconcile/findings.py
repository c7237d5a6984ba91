"""What one reconcile pass found, and whether it changed it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Finding"]


@dataclass(frozen=True)
class Finding:
    kind: str  # interrupted_action | rollback | project_config | vanished | drift | orphan...
    target: str
    detail: str
    applied: bool
