"""Running LXD operations: find the ones touching an instance and wait for them."""

from __future__ import annotations

from containervps.lxd.client import LxdApi

__all__ = ["Operations"]


class Operations:
    """Background operations LXD is running (e.g. a create left behind by a killed client)."""

    def __init__(self, api: LxdApi) -> None:
        self.api = api

    def running_for(self, *, name: str, project: str) -> list[str]:
        """Ids of running operations whose resources include instance ``name``."""
        meta = self.api.request(
            "get",
            "/operations",
            project=project,
            params={"recursion": "1"},
            what=f"list operations in {project}",
        )
        ids = []
        for op in (meta or {}).get("running", []) or []:
            resources = op.get("resources") or {}
            paths = [p for group in resources.values() for p in group or []]
            if any(p.split("?")[0].rstrip("/").split("/")[-1] == name for p in paths):
                ids.append(str(op["id"]))
        return ids

    def wait_idle(self, *, name: str, project: str, timeout: float | None = None) -> None:
        """Wait until no operation touches instance ``name`` (raises LxdError if one fails)."""
        for op_id in self.running_for(name=name, project=project):
            self.api.wait(op_id, what=f"pending operation on {name}", timeout=timeout)
