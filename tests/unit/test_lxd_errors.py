"""Foreign exceptions at the LXD seam become domain errors; domain errors have a status."""

from __future__ import annotations

import inspect

import pytest
import requests
from pylxd import exceptions as pylxd_exc

from containervps import errors
from containervps.api.errors import STATUS_BY_ERROR, status_for
from containervps.lxd.client import translate_errors


class _Response:
    status_code = 500

    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        self._message = message

    def json(self) -> dict[str, str]:
        return {"error": self._message}


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (pylxd_exc.NotFound(_Response(404, "not found")), errors.LxdNotFound),
        (pylxd_exc.LXDAPIException(_Response(400, "bad config")), errors.LxdError),
        # LXD answers 503 while it stops (SIGTERM): unavailable, as when it is gone.
        (pylxd_exc.LXDAPIException(_Response(503, "LXD is shutting down")), errors.LxdUnavailable),
        (pylxd_exc.ClientConnectionFailed("refused"), errors.LxdUnavailable),
        (requests.ConnectionError("refused"), errors.LxdUnavailable),
        (requests.ReadTimeout("slow"), errors.LxdUnavailable),
    ],
)
def test_foreign_exceptions_are_translated(raised: Exception, expected: type) -> None:
    with pytest.raises(expected) as caught, translate_errors("do a thing"):
        raise raised
    assert caught.value.__cause__ is raised
    error = caught.value
    assert isinstance(error, errors.ContainerVpsError)
    assert "do a thing" in error.brief or "LXD" in error.brief


def test_lxd_api_message_is_kept() -> None:
    with pytest.raises(errors.LxdError, match="bad config"), translate_errors("update"):
        raise pylxd_exc.LXDAPIException(_Response(400, "bad config"))


def test_every_domain_error_maps_to_a_status() -> None:
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.ContainerVpsError) and c is not errors.ContainerVpsError
    ]
    for cls in classes:
        assert any(issubclass(cls, mapped) for mapped, _ in STATUS_BY_ERROR), cls
    assert status_for(errors.LxdUnavailable("down")) == 503
    assert status_for(errors.LxdNotFound("gone")) == 404
