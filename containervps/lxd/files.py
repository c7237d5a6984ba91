"""Files inside instances (running or stopped), written through LXD's files API."""

from __future__ import annotations

from containervps.lxd.client import LxdApi

__all__ = ["Files"]


class Files:
    """Write files and directories into an instance as a given owner and mode."""

    def __init__(self, api: LxdApi) -> None:
        self.api = api

    def mkdir(self, *, name: str, project: str, path: str, mode: int = 0o755) -> None:
        """Create a directory owned by root (LXD leaves an existing one as it is)."""
        self.api.request(
            "post",
            f"/instances/{name}/files",
            project=project,
            params={"path": path},
            headers={
                "X-LXD-type": "directory",
                "X-LXD-uid": "0",
                "X-LXD-gid": "0",
                "X-LXD-mode": f"{mode:04o}",
            },
            data=b"",
            what=f"create {path} in {name}",
        )

    def push(
        self, *, name: str, project: str, path: str, content: bytes, mode: int = 0o644
    ) -> None:
        """Write (or overwrite) a root-owned file; the parent directory must exist."""
        self.api.request(
            "post",
            f"/instances/{name}/files",
            project=project,
            params={"path": path},
            headers={
                "Content-Type": "application/octet-stream",
                "X-LXD-type": "file",
                "X-LXD-write": "overwrite",
                "X-LXD-uid": "0",
                "X-LXD-gid": "0",
                "X-LXD-mode": f"{mode:04o}",
            },
            data=content,
            what=f"write {path} in {name}",
        )
