"""Images in LXD's local store: import, alias, list, delete, copy from simplestreams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from containervps.errors import LxdNotFound
from containervps.lxd.client import LxdApi
from containervps.lxd.types import ImageInfo


def _info(meta: dict[str, Any]) -> ImageInfo:
    return ImageInfo(
        fingerprint=meta["fingerprint"],
        aliases=tuple(a["name"] for a in meta.get("aliases") or []),
        properties=dict(meta.get("properties") or {}),
        size_bytes=int(meta.get("size") or 0),
        uploaded_at=str(meta.get("uploaded_at", "")),
    )


class Images:
    """The local image store (shared by all projects that do not isolate images)."""

    def __init__(self, api: LxdApi) -> None:
        self.api = api

    def list(self) -> list[ImageInfo]:
        metas = self.api.request("get", "/images", params={"recursion": "1"}, what="list images")
        return [_info(m) for m in metas]

    def get(self, fingerprint: str) -> ImageInfo | None:
        try:
            return _info(self.api.request("get", f"/images/{fingerprint}", what="read image"))
        except LxdNotFound:
            return None

    def by_alias(self, alias: str) -> ImageInfo | None:
        """The image an alias points to, or None."""
        try:
            meta = self.api.request("get", f"/images/aliases/{alias}", what=f"read alias {alias}")
        except LxdNotFound:
            return None
        return self.get(meta["target"])

    def import_tarball(self, path: Path, *, properties: dict[str, str]) -> str:
        """Upload a unified image tarball; return its fingerprint."""
        with path.open("rb") as body:
            meta = self.api.request(
                "post",
                "/images",
                data=body,
                headers={
                    "Content-Type": "application/octet-stream",
                    "X-LXD-properties": "&".join(f"{k}={v}" for k, v in properties.items()),
                },
                what=f"import image {path.name}",
            )
        return str(meta["fingerprint"])

    def copy_from_simplestreams(self, *, server: str, alias: str) -> str:
        """Copy an image from a simplestreams remote (hosts with internet); return fingerprint."""
        meta = self.api.request(
            "post",
            "/images",
            json={
                "source": {
                    "type": "image",
                    "mode": "pull",
                    "server": server,
                    "protocol": "simplestreams",
                    "alias": alias,
                }
            },
            what=f"copy image {alias} from {server}",
        )
        return str(meta["fingerprint"])

    def set_alias(self, *, alias: str, fingerprint: str, description: str = "") -> None:
        """Point ``alias`` at ``fingerprint`` (creating or moving it)."""
        current = self.by_alias(alias)
        if current and current.fingerprint == fingerprint:
            return
        if current:
            self.api.request(
                "put",
                f"/images/aliases/{alias}",
                json={"target": fingerprint, "description": description},
                what=f"move alias {alias}",
            )
        else:
            self.api.request(
                "post",
                "/images/aliases",
                json={"name": alias, "target": fingerprint, "description": description},
                what=f"create alias {alias}",
            )

    def set_properties(self, fingerprint: str, properties: dict[str, str]) -> None:
        """Merge properties into an image's."""
        meta = self.api.request("get", f"/images/{fingerprint}", what="read image")
        merged = {**(meta.get("properties") or {}), **properties}
        self.api.request(
            "patch",
            f"/images/{fingerprint}",
            json={"properties": merged},
            what="set image properties",
        )

    def delete(self, fingerprint: str) -> None:
        try:
            self.api.request("delete", f"/images/{fingerprint}", what="delete image")
        except LxdNotFound:
            return


__all__ = ["Images"]
