"""Benchmark runs in SQLite: intent first (status running), outcome after."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import BenchRun
from containervps.errors import NotFound


def record_start(
    settings: Settings,
    *,
    run_id: str,
    kind: str,
    workload: str,
    kinds: list[str],
    params: dict[str, Any],
    report_dir: Path,
) -> None:
    """Insert the run's row before anything is created."""
    with session_scope(settings) as session:
        session.add(
            BenchRun(
                id=run_id,
                kind=kind,
                workload=workload,
                kinds=",".join(kinds),
                params=params,
                report_dir=str(report_dir),
            )
        )


def record_finish(
    settings: Settings, run_id: str, *, status: str, error: str | None, summary: dict[str, Any]
) -> None:
    """Store the outcome and headline figures of a run."""
    with session_scope(settings) as session:
        row = session.get(BenchRun, run_id)
        if row is None:
            return
        row.status = status
        row.error = error
        row.summary = summary
        row.finished_at = datetime.now(UTC)
        session.add(row)


def list_runs(settings: Settings, *, limit: int = 50) -> list[BenchRun]:
    """The most recent runs first."""
    with session_scope(settings) as session:
        query = select(BenchRun).order_by(col(BenchRun.started_at).desc()).limit(limit)
        return list(session.exec(query).all())


def get_run(settings: Settings, run_id: str) -> BenchRun:
    """One run by id (a unique prefix is enough)."""
    with session_scope(settings) as session:
        row = session.get(BenchRun, run_id)
        if row is not None:
            return row
        matches = list(
            session.exec(select(BenchRun).where(col(BenchRun.id).startswith(run_id))).all()
        )
    if len(matches) == 1:
        return matches[0]
    raise NotFound(
        f"no benchmark run {run_id!r}" if not matches else f"run id {run_id!r} is ambiguous",
        details={"run_id": run_id},
        resolution="see `containervps bench list`",
    )
