"""Snapshots of instances: create, restore (keeping the instance's own idmap), delete."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from containervps.errors import LxdError
from containervps.lxd import idmaps
from containervps.lxd.client import LxdApi
from containervps.lxd.locks import instance_create_lock

__all__ = ["Snapshots"]

log = logging.getLogger(__name__)

LOWLEVEL = "restricted.containers.lowlevel"


class Snapshots:
    """Stateless (disk) snapshots of containers."""

    def __init__(self, api: LxdApi, *, create_lock: Path) -> None:
        self.api = api
        self.create_lock = create_lock

    def create(self, *, name: str, project: str, snapshot: str) -> None:
        """Snapshot the instance's disk (btrfs: instant, copy-on-write)."""
        self.api.request(
            "post",
            f"/instances/{name}/snapshots",
            project=project,
            json={"name": snapshot, "stateful": False},
            what=f"snapshot {name} as {snapshot}",
        )

    def names(self, *, name: str, project: str) -> list[str]:
        """The instance's snapshot names."""
        urls = self.api.request(
            "get", f"/instances/{name}/snapshots", project=project, what=f"list snapshots of {name}"
        )
        return [str(u).rstrip("/").split("/")[-1].split("?")[0] for u in urls or []]

    def restore(self, *, name: str, project: str, snapshot: str) -> int:
        """Put the disk and config back as at the snapshot; the instance keeps its own idmap.

        Call it on a stopped instance (LXD would restart a running one with the snapshot's
        map). Runs under the host-wide create lock: while the instance carries the snapshot's
        map no create may allocate one (idmaps.py). Returns the instance's idmap base.
        """
        with instance_create_lock(self.create_lock):
            before = self._config(name, project)
            self.api.request(
                "put",
                f"/instances/{name}",
                project=project,
                json={"restore": snapshot},
                what=f"restore {name} from {snapshot}",
            )
            return self._keep_idmap(name, project, own=idmaps.base_of(before))

    def repair_idmap(self, *, name: str, project: str) -> int:
        """Give the instance a sane map again (in root's range, shared with nobody) if it lost
        one; returns its base."""
        with instance_create_lock(self.create_lock):
            return self._keep_idmap(name, project, own=idmaps.base_of(self._config(name, project)))

    def delete(self, *, name: str, project: str, snapshot: str) -> None:
        self.api.request(
            "delete",
            f"/instances/{name}/snapshots/{snapshot}",
            project=project,
            what=f"delete snapshot {snapshot} of {name}",
        )

    # --- the idmap a restore must not change ------------------------------------------------
    def _config(self, name: str, project: str) -> dict[str, str]:
        meta = self.api.request(
            "get", f"/instances/{name}", project=project, what=f"read instance {name}"
        )
        return dict(meta.get("expanded_config") or meta.get("config") or {})

    def _keep_idmap(self, name: str, project: str, *, own: int | None) -> int:
        config = self._config(name, project)
        current = idmaps.base_of(config)
        if config.get(idmaps.ISOLATED) != "true" or current is None:
            return current or 0
        bounds = idmaps.root_range()
        if bounds is None:
            return current
        others = self._other_bases(name, project)
        want = idmaps.wanted_base(own, others, bounds)
        if want is None:
            raise LxdError(
                f"no free isolated idmap left for {name}",
                resolution="widen root's range in /etc/subuid and /etc/subgid (host init)",
            )
        if current == want and config.get(idmaps.NEXT_KEY) == idmaps.idmap_json(want):
            return current
        log.warning(
            "instance got another idmap (snapshot's map); putting its own back",
            extra={"instance": name, "project": project, "had": current, "base": want},
        )
        self._set_idmap(name, project, want)
        return want

    def _other_bases(self, name: str, project: str) -> list[int]:
        metas: list[dict[str, Any]] = self.api.request(
            "get",
            "/instances",
            params={"recursion": "1", "all-projects": "true"},
            what="list instances of all projects",
        )
        return [
            base
            for m in metas
            if (m.get("name"), m.get("project") or "default") != (name, project)
            and (base := idmaps.base_of(dict(m.get("config") or {}))) is not None
        ]

    def _set_idmap(self, name: str, project: str, base: int) -> None:
        """Write the instance's volatile idmap keys (LXD shifts its disk at the next start).

        A restricted project forbids changing volatile keys unless its low-level restriction
        is lifted: it is, for this one request, under the create lock. Tenants have no LXD
        access; if this process dies in between, the reconciler puts the project's config back.
        """
        meta = self.api.request("get", f"/projects/{project}", what=f"read project {project}")
        config = dict(meta.get("config") or {})
        relax = config.get("restricted") == "true" and config.get(LOWLEVEL) != "allow"
        if relax:
            self._put_project(project, meta, {**config, LOWLEVEL: "allow"})
        try:
            self.api.request(
                "patch",
                f"/instances/{name}",
                project=project,
                json={
                    "config": {idmaps.BASE_KEY: str(base), idmaps.NEXT_KEY: idmaps.idmap_json(base)}
                },
                what=f"give {name} its idmap back",
            )
        finally:
            if relax:
                self._put_project(project, meta, config)

    def _put_project(self, project: str, meta: dict[str, Any], config: dict[str, str]) -> None:
        self.api.request(
            "put",
            f"/projects/{project}",
            json={"config": config, "description": meta.get("description", "")},
            what=f"update project {project}",
        )
