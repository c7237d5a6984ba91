"""The only package that talks to Docker (through the docker SDK)."""

from __future__ import annotations

from containervps.docker_rt.client import DockerRuntime, RunningContainer

__all__ = ["DockerRuntime", "RunningContainer"]
