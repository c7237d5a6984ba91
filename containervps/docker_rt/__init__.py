"""The only package that talks to Docker (through the docker SDK)."""

from __future__ import annotations

from containervps.docker_rt.client import DockerError, DockerRuntime, RunningContainer

__all__ = ["DockerError", "DockerRuntime", "RunningContainer"]
