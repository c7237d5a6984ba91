"""Commands run inside a server."""

from __future__ import annotations

from pydantic import BaseModel

from containervps.schemas.bounds import Encodable
from containervps.schemas.common import Strict

__all__ = ["ExecRequest", "ExecResult"]


class ExecRequest(Strict):
    command: list[Encodable] | Encodable  # a string runs with `sh -c`
    timeout: float | None = None


class ExecResult(BaseModel):
    """What a command run through the API printed, and how it ended."""

    exit_code: int
    stdout: str
    stderr: str
    seconds: float
