"""Docker through its SDK: import a rootfs as an image, run, exec and remove labelled containers.

Every docker/requests exception is translated here, once, into DockerError.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import requests
from docker import errors as docker_errors

from containervps.errors import DockerError
from containervps.shell import run

START_HINT = "start dockerd with `containervps host start --docker`"


@contextmanager
def translate_errors(what: str) -> Iterator[None]:
    """Turn docker SDK/requests exceptions raised inside the block into DockerError."""
    try:
        yield
    except docker_errors.DockerException as exc:
        raise DockerError(f"{what}: {exc}", resolution=START_HINT) from exc
    except requests.RequestException as exc:
        raise DockerError(
            f"{what}: Docker is not answering ({exc})", resolution=START_HINT
        ) from exc


@dataclass(frozen=True)
class RunningContainer:
    id: str
    name: str
    pid: int  # the container's first process on the host


class DockerRuntime:
    """A connection to the local dockerd."""

    def __init__(self, *, timeout: float = 120) -> None:
        with translate_errors("connect to Docker"):
            self.client = docker.from_env(timeout=int(timeout))
            self.client.ping()

    def version(self) -> str:
        with translate_errors("read Docker version"):
            return str(self.client.version().get("Version", "?"))

    def has_image(self, tag: str) -> bool:
        with translate_errors(f"look up image {tag}"):
            try:
                self.client.images.get(tag)
            except docker_errors.ImageNotFound:
                return False
        return True

    def import_rootfs(self, rootfs: Path, *, tag: str, labels: dict[str, str]) -> str:
        """``docker import`` a root filesystem directory as image ``tag`` (kept as a cache)."""
        repository, _, version = tag.partition(":")
        changes = [f'LABEL {k}="{v}"' for k, v in labels.items()]
        with tempfile.TemporaryDirectory(prefix="cvps-docker-import-") as scratch:
            tarball = Path(scratch) / "rootfs.tar"
            run(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."],
                what=f"pack {rootfs}",
            )
            with translate_errors(f"import {rootfs} as {tag}"):
                self.client.api.import_image_from_file(
                    str(tarball), repository=repository, tag=version or "latest", changes=changes
                )
        return tag

    def run(
        self,
        *,
        name: str,
        image: str,
        command: list[str],
        labels: dict[str, str],
        memory_mib: int,
        vcpus: int,
    ) -> RunningContainer:
        """Start a detached container without network (``--network none``)."""
        with translate_errors(f"run container {name}"):
            container = self.client.containers.run(
                image,
                command,
                name=name,
                labels=labels,
                detach=True,
                network_mode="none",
                mem_limit=f"{memory_mib}m",
                nano_cpus=vcpus * 1_000_000_000,
                stdin_open=False,
            )
            container.reload()
            return RunningContainer(
                id=container.id, name=name, pid=int(container.attrs["State"]["Pid"])
            )

    def status(self, container_id: str) -> str:
        with translate_errors(f"inspect {container_id[:12]}"):
            container = self.client.containers.get(container_id)
            return str(container.status)

    def exec(self, container_id: str, command: list[str], *, detach: bool = False) -> int:
        """Run a command inside; return its exit code (0 when detached)."""
        with translate_errors(f"exec in {container_id[:12]}"):
            container = self.client.containers.get(container_id)
            result: Any = container.exec_run(command, detach=detach)
            return 0 if detach else int(result.exit_code)

    def labelled(self, label: str, value: str | None = None) -> list[str]:
        """Ids of every container (running or not) carrying ``label`` (= ``value``)."""
        selector = f"{label}={value}" if value is not None else label
        with translate_errors(f"list containers labelled {selector}"):
            return [
                c.id for c in self.client.containers.list(all=True, filters={"label": selector})
            ]

    def remove(self, container_id: str) -> None:
        """Kill and remove a container; absent is fine."""
        with translate_errors(f"remove {container_id[:12]}"):
            try:
                self.client.containers.get(container_id).remove(force=True)
            except docker_errors.NotFound:
                return

    def root_dir(self) -> Path:
        """Docker's data root (where overlay2 keeps container layers)."""
        with translate_errors("read Docker info"):
            return Path(str(self.client.info().get("DockerRootDir", "/var/lib/docker")))
