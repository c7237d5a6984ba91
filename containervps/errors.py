"""The one domain error hierarchy. Each error has a brief, details and a resolution.

``code`` is the stable error code the API returns; ``api/errors.py`` maps classes to HTTP status.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "ContainerVpsError",
    "DockerError",
    "ExecLimitExceeded",
    "Forbidden",
    "HostSetupError",
    "InvalidInput",
    "Locked",
    "LxdError",
    "LxdNotFound",
    "LxdUnavailable",
    "NotFound",
    "RateLimited",
    "ResourceLimitExceeded",
    "ResourceUnavailable",
    "ServiceUnavailable",
    "Unauthorized",
    "VmError",
]


class ContainerVpsError(Exception):
    """Base of every error containervps raises on purpose."""

    code = "internal_error"

    def __init__(
        self,
        brief: str,
        *,
        details: dict[str, Any] | None = None,
        resolution: str | None = None,
    ) -> None:
        super().__init__(brief)
        self.brief = brief
        self.details = details or {}
        self.resolution = resolution

    def one_line(self) -> str:
        """The brief and, when known, what to do about it."""
        return f"{self.brief} ({self.resolution})" if self.resolution else self.brief


class InvalidInput(ContainerVpsError):
    code = "invalid_input"


class Unauthorized(ContainerVpsError):
    code = "unauthorized"


class Forbidden(ContainerVpsError):
    code = "forbidden"


class NotFound(ContainerVpsError):
    code = "not_found"


class Conflict(ContainerVpsError):
    code = "conflict"


class Locked(ContainerVpsError):
    code = "locked"


class RateLimited(ContainerVpsError):
    """Too many requests (``details['retry_after_seconds']`` says when to come back)."""

    code = "rate_limit_exceeded"


class ResourceLimitExceeded(ContainerVpsError):
    """A tenant quota would be exceeded (``details['limit']`` names it)."""

    code = "resource_limit_exceeded"


class ExecLimitExceeded(ResourceLimitExceeded):
    """A command run through the API passed its time or output limit and was killed."""


class ResourceUnavailable(ContainerVpsError):
    """The host ran out of something (``details['resource']`` names it)."""

    code = "resource_unavailable"


class ServiceUnavailable(ContainerVpsError):
    code = "service_unavailable"


class HostSetupError(ContainerVpsError):
    """The host cannot be set up as asked (bad subnet, pool file, missing package...)."""

    code = "host_setup_failed"


class LxdError(ContainerVpsError):
    """LXD refused or failed an operation."""

    code = "lxd_error"


class LxdNotFound(LxdError, NotFound):
    code = "not_found"


class LxdUnavailable(LxdError, ServiceUnavailable):
    """LXD is not installed, not running or not answering in time."""

    code = "service_unavailable"


class DockerError(HostSetupError):
    """Docker refused or failed an operation, or is not running (benchmark only)."""

    code = "docker_error"


class VmError(HostSetupError):
    """A QEMU guest of the benchmark could not be made, started or reached."""

    code = "vm_error"
