"""The reconciler: makes SQLite and LXD agree again after crashes and drift."""

from containervps.services.reconcile.findings import Finding
from containervps.services.reconcile.reconciler import Reconciler

__all__ = ["Finding", "Reconciler"]
