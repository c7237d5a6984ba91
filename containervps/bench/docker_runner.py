"""Docker app containers for the density benchmark: the same rootfs via ``docker import``."""

from __future__ import annotations

import threading
import time
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
from containervps.docker_rt import DockerRuntime
from containervps.errors import ContainerVpsError, DockerError

LABEL = "containervps.bench"

# An app container runs one process: what the workload needs, no init.
APP_COMMANDS = {
    "busybox": ["/bin/sleep", "2147483647"],
    "debian-12": [
        "/bin/sh",
        "-c",
        "mkdir -p /run/sshd && ssh-keygen -A >/dev/null && exec /usr/sbin/sshd -D -e",
    ],
}


class DockerRunner:
    """Containers labelled ``containervps.bench=<run id>``, without network."""

    kind = "docker"

    def __init__(self, *, spec: DensitySpec, rootfs: Path) -> None:
        self.spec = spec
        self.rootfs = rootfs
        self.tag = f"containervps-bench/{spec.workload}:{rootfs.parent.name}"
        self._docker: DockerRuntime | None = None
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}  # name -> container id

    @property
    def docker(self) -> DockerRuntime:
        if self._docker is None:
            self._docker = DockerRuntime()
        return self._docker

    def prepare(self) -> dict[str, Any]:
        imported = False
        if not self.docker.has_image(self.tag):
            self.docker.import_rootfs(
                self.rootfs, tag=self.tag, labels={"containervps.image": self.spec.workload}
            )
            imported = True
        return {
            "image": self.tag,
            "imported_now": imported,
            "rootfs": str(self.rootfs),
            "docker_version": self.docker.version(),
            "command": " ".join(APP_COMMANDS[self.spec.workload]),
            "network": "none",
            "limits": {"memory_mib": self.spec.memory_mib, "vcpus": self.spec.vcpus},
            "ready_means": " ".join(ready_command(self.spec.workload)),
        }

    def _name(self, index: int) -> str:
        return f"cvps-bench-{self.spec.run_id}-{index}"

    def launch(self, index: int, *, batch: int) -> InstanceRecord:
        name = self._name(index)
        rec = InstanceRecord(kind=self.kind, index=index, name=name, batch=batch)
        started = time.perf_counter()
        try:
            running = self.docker.run(
                name=name,
                image=self.tag,
                command=APP_COMMANDS[self.spec.workload],
                labels={LABEL: self.spec.run_id},
                memory_mib=self.spec.memory_mib,
                vcpus=self.spec.vcpus,
            )
            with self._lock:
                self._ids[name] = running.id
            rec.running_s = time.perf_counter() - started
            self._wait_ready(running.id, started)
            rec.ready_s = time.perf_counter() - started
            shim = memory.parent_pid(running.pid)
            rec.host_pids = [shim] if shim else []
        except ContainerVpsError as exc:
            rec.error = exc.one_line()
        return rec

    def _wait_ready(self, container_id: str, started: float) -> None:
        command = ready_command(self.spec.workload)
        while self.docker.exec(container_id, command) != 0:
            if time.perf_counter() - started > self.spec.boot_timeout:
                raise DockerError(f"not ready within {self.spec.boot_timeout:.0f}s")
            time.sleep(0.1)

    def _id(self, rec: InstanceRecord) -> str:
        return self._ids[rec.name]

    def cgroup(self, rec: InstanceRecord) -> Path | None:
        pids = rec.host_pids
        if not pids:
            return None
        # The container's first process is the shim's child.
        children = Path(f"/proc/{pids[0]}/task/{pids[0]}/children")
        try:
            first = int(children.read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None
        return memory.memory_cgroup(first)

    def _run(self, rec: InstanceRecord, command: list[str]) -> None:
        code = self.docker.exec(self._id(rec), command)
        if code != 0:
            raise DockerError(f"{command[0]} exited {code} in {rec.name}")

    def probe(self, rec: InstanceRecord) -> float:
        return timed(self._run, rec, ["true"])

    def cpu_job(self, rec: InstanceRecord, *, loops: int) -> float:
        return timed(self._run, rec, cpu_command(loops)) - self.probe(rec)

    def iops(self, rec: InstanceRecord, *, writes: int) -> dict[str, Any] | None:
        seconds = timed(self._run, rec, iops_command(writes, "/root/.cvps-bench-iops"))
        seconds -= self.probe(rec)
        host_dir = self.docker.root_dir() / "tmp"
        return iops_result(inside_seconds=seconds, writes=writes, host_dir=host_dir)

    def start_activity(self, rec: InstanceRecord) -> None:
        self.docker.exec(self._id(rec), active_command(), detach=True)

    def cleanup(self) -> list[str]:
        removed = []
        for container_id in self.docker.labelled(LABEL, self.spec.run_id):
            self.docker.remove(container_id)
            removed.append(f"docker:{container_id[:12]}")
        return removed
