"""LXD system containers for the density benchmark, in their own throw-away LXD project."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from containervps.bench import memory
from containervps.bench.model import DensitySpec, InstanceRecord
from containervps.bench.runners import iops_result, timed
from containervps.bench.workload import (
    active_command,
    cpu_command,
    iops_command,
    ready_command,
)
from containervps.config import Settings
from containervps.errors import ContainerVpsError, LxdError, LxdNotFound
from containervps.lxd import Lxd, instance_pool, pool_owner, storage_name

PROJECT_PREFIX = "cvps-bench-"
DISK_GIB = 2  # each container's root disk, as the nano plan's
LXD_LOGS = Path("/var/log/lxd")


def project_name(run_id: str) -> str:
    """The LXD project that holds a run's containers."""
    return f"{PROJECT_PREFIX}{run_id}"[:63]


class LxdRunner:
    """Containers from the workload's image alias with the ``containervps`` profile."""

    kind = "lxd"

    def __init__(self, *, settings: Settings, lxd: Lxd, spec: DensitySpec) -> None:
        self.settings = settings
        self.lxd = lxd
        self.spec = spec
        self.project = project_name(spec.run_id)
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._pool_driver = "btrfs"
        self._own_pools = settings.disk_layout == "per_server"

    def prepare(self) -> dict[str, Any]:
        image = self.lxd.images.by_alias(self.spec.workload)
        if image is None:
            raise LxdNotFound(
                f"image {self.spec.workload!r} is not in LXD",
                resolution=f"run `containervps image build {self.spec.workload}`",
            )
        self.lxd.host.put_project(
            name=self.project,
            config={"features.images": "false", "features.profiles": "false"},
            description=f"containervps density benchmark {self.spec.run_id}",
        )
        shared = self.lxd.host.get_pool(self.settings.storage_pool)
        self._pool_driver = shared.driver if shared else self.settings.storage_driver
        return {
            "image": self.spec.workload,
            "fingerprint": image.fingerprint,
            "project": self.project,
            "profile": self.settings.profile,
            "storage": (
                f"own {self._pool_driver} pool per container ({DISK_GIB} GiB), as servers"
                if self._own_pools
                else f"{DISK_GIB} GiB volumes of the shared {self._pool_driver} pool, as servers"
            ),
            "limits": {"memory_mib": self.spec.memory_mib, "vcpus": self.spec.vcpus},
            "ready_means": " ".join(ready_command(self.spec.workload)),
        }

    def _pool(self, name: str) -> str:
        return instance_pool(self.project, name) if self._own_pools else self.settings.storage_pool

    def launch(self, index: int, *, batch: int) -> InstanceRecord:
        rec = InstanceRecord(kind=self.kind, index=index, name=f"bench-{index}", batch=batch)
        started = time.perf_counter()
        try:
            self._start(rec, started)
        except ContainerVpsError as exc:
            rec.error = f"{exc.one_line()} {lxc_log_error(self.project, rec.name)}".strip()
        return rec

    def _start(self, rec: InstanceRecord, started: float) -> None:
        name = rec.name
        with self._lock:
            self._names.append(name)  # intent first: cleanup knows it even if create fails
        # Like a server: the platform's disk layout (a filesystem per VPS costs host memory too).
        size = {"size": f"{DISK_GIB}GiB"} if self._pool_driver == "btrfs" else {}
        pool = self._pool(name)
        if self._own_pools:
            self.lxd.host.create_pool(name=pool, driver=self._pool_driver, config=size)
            size = {}
        self.lxd.instances.create(
            name=name,
            project=self.project,
            image=self.spec.workload,
            profiles=[self.settings.profile],
            config={
                "limits.memory": f"{self.spec.memory_mib}MiB",
                "limits.cpu": str(self.spec.vcpus),
            },
            devices={"root": {"type": "disk", "path": "/", "pool": pool, **size}},
            tags={"bench": self.spec.run_id},
        )
        if self._own_pools:
            self.lxd.host.delete_image_volumes(pool)
        rec.created_s = time.perf_counter() - started
        self.lxd.instances.set_state(name=name, project=self.project, action="start")
        rec.running_s = time.perf_counter() - started
        self._wait_ready(name, started)
        rec.ready_s = time.perf_counter() - started
        init_pid = self.lxd.instances.state(name=name, project=self.project).pid
        monitor = memory.parent_pid(init_pid)
        rec.host_pids = [monitor] if monitor else []

    def _wait_ready(self, name: str, started: float) -> None:
        deadline = started + self.spec.boot_timeout
        command = ready_command(self.spec.workload)
        while True:
            try:
                if self.lxd.instances.exec(
                    name=name, project=self.project, command=command, timeout=30
                ).ok:
                    return
            except LxdError:
                pass  # not accepting exec yet
            if time.perf_counter() > deadline:
                raise LxdError(f"{name} not ready within {self.spec.boot_timeout:.0f}s")
            time.sleep(0.1)

    def cgroup(self, rec: InstanceRecord) -> Path | None:
        try:
            pid = self.lxd.instances.state(name=rec.name, project=self.project).pid
        except ContainerVpsError:
            return None
        leaf = memory.memory_cgroup(pid) if pid else None
        return memory.enclosing_cgroup(leaf, prefix="lxc.payload.")

    def _exec(self, rec: InstanceRecord, command: list[str], *, timeout: float = 600) -> None:
        result = self.lxd.instances.exec(
            name=rec.name, project=self.project, command=command, timeout=timeout
        )
        if not result.ok:
            raise LxdError(f"{command[0]} failed in {rec.name}: {result.stderr.strip()[:200]}")

    def probe(self, rec: InstanceRecord) -> float:
        return timed(self._exec, rec, ["true"], timeout=60)

    def cpu_job(self, rec: InstanceRecord, *, loops: int) -> float:
        return timed(self._exec, rec, cpu_command(loops)) - self.probe(rec)

    def iops(self, rec: InstanceRecord, *, writes: int) -> dict[str, Any] | None:
        seconds = timed(self._exec, rec, iops_command(writes, "/root/.cvps-bench-iops"))
        seconds -= self.probe(rec)
        host_dir = self.lxd.host.pool_dir(self._pool(rec.name)) / "containers"
        host_dir /= storage_name(self.project, rec.name)
        return iops_result(inside_seconds=seconds, writes=writes, host_dir=host_dir)

    def start_activity(self, rec: InstanceRecord) -> None:
        self._exec(rec, active_command(), timeout=60)

    def cleanup(self) -> list[str]:
        removed: list[str] = []
        if self.lxd.host.get_project(self.project) is not None:
            names = [i.name for i in self.lxd.instances.all(project=self.project)]
            with ThreadPoolExecutor(max_workers=4) as workers:
                removed += workers.map(self._delete, names)
            self.lxd.host.delete_project(self.project)
            removed.append(f"lxd-project:{self.project}")
        for pool in self.lxd.host.list_pools():
            owner = pool_owner(pool.name)
            if owner is not None and owner[0] == self.project:
                self.lxd.host.delete_pool(pool.name)
                removed.append(f"lxd-pool:{pool.name}")
        return removed

    def _delete(self, name: str) -> str:
        """Delete one instance, retrying while LXD still runs another operation on it."""
        for attempt in range(5):
            try:
                self.lxd.instances.delete(name=name, project=self.project)
                break
            except LxdError:
                if attempt == 4:
                    raise
                time.sleep(1 + attempt)
        return f"lxd:{self.project}/{name}"


def lxc_log_error(project: str, name: str) -> str:
    """The first ERROR line of an instance's lxc.log (LXD's own message hides it)."""
    log_file = LXD_LOGS / storage_name(project, name) / "lxc.log"
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [ln.split(" - ", 2)[-1] for ln in lines if " ERROR " in ln]
    return f"({errors[0]})" if errors else ""
