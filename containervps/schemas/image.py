"""Images: the operating systems tenants can boot."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["ImagePublic"]


class ImagePublic(BaseModel):
    name: str
    os: str
    release: str
    description: str
    size_bytes: int
