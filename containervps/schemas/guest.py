"""Commands run inside a server."""

from __future__ import annotations

from containervps.schemas.common import Strict

__all__ = ["ExecRequest"]


class ExecRequest(Strict):
    command: list[str] | str  # a string runs with `sh -c`
    timeout: float | None = None
