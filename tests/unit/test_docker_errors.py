"""Docker SDK and requests exceptions become DockerError at the docker_rt seam."""

from __future__ import annotations

import pytest
import requests
from docker import errors as docker_errors

from containervps.docker_rt.client import translate_errors
from containervps.errors import DockerError


@pytest.mark.parametrize(
    "exc",
    [
        docker_errors.DockerException("daemon gone"),
        docker_errors.NotFound("no such container"),
        docker_errors.ImageNotFound("no such image"),
        requests.ConnectionError("refused"),
        requests.Timeout("slow"),
    ],
)
def test_foreign_exceptions_are_translated(exc: Exception) -> None:
    with pytest.raises(DockerError) as info, translate_errors("run container x"):
        raise exc
    assert info.value.brief.startswith("run container x")
    assert info.value.__cause__ is exc
