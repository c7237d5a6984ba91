"""`containervps reconcile`: make SQLite and LXD agree (or show what that would change)."""

from __future__ import annotations

import typer

from containervps.cli import common
from containervps.services.reconcile import Reconciler


def reconcile(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would change."),
    json_out: bool = common.JsonOption,
) -> None:
    """Finish or roll back interrupted actions, fix drift, report and reap tagged orphans."""
    findings = Reconciler(common.settings(), common.lxd()).run(dry_run=dry_run)
    if json_out:
        common.print_json(findings)
        return
    if not findings:
        common.console.print("nothing to reconcile: SQLite and LXD agree")
        return
    common.print_table(
        "reconcile" + (" (dry run)" if dry_run else ""),
        ["kind", "target", "detail", "applied"],
        [(f.kind, f.target, f.detail, "yes" if f.applied else "no") for f in findings],
    )
