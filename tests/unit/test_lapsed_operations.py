"""A state change LXD reports as lapsed (its 30 s operation lock) waits for the outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from containervps.errors import LxdError
from containervps.lxd import instances as instances_module
from containervps.lxd.instance_logs import InstanceLogs
from containervps.lxd.instances import Instances

LAPSED = 'Instance "start" operation timed out after 30s'


class _Api:
    """Answers a state change with ``error``, then reports ``statuses`` one read at a time."""

    def __init__(self, error: str, statuses: list[str]) -> None:
        self.error, self.statuses, self.puts = error, statuses, 0

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        if method == "put":
            self.puts += 1
            raise LxdError(self.error)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"name": "c1", "status": status}


def _instances(api: _Api, tmp_path: Path) -> Instances:
    return Instances(api, create_lock=tmp_path / "lock", logs=InstanceLogs(tmp_path))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instances_module, "LAPSE_WAIT", 0.2)
    monkeypatch.setattr(instances_module.time, "sleep", lambda _s: None)


def test_a_lapsed_start_that_gets_there_succeeds(tmp_path: Path) -> None:
    api = _Api(LAPSED, ["Stopped", "Stopped", "Running"])
    _instances(api, tmp_path).set_state(name="c1", project="p", action="start")
    assert api.puts == 1 and api.statuses == ["Running"]


def test_a_lapsed_start_that_never_gets_there_raises(tmp_path: Path) -> None:
    with pytest.raises(LxdError, match="timed out"):
        _instances(_Api(LAPSED, ["Stopped"]), tmp_path).set_state(
            name="c1", project="p", action="start"
        )


def test_a_lapsed_hard_stop_waits_but_a_clean_stop_is_left_to_the_caller(tmp_path: Path) -> None:
    stopped = _Api(LAPSED, ["Running", "Stopped"])
    _instances(stopped, tmp_path).set_state(name="c1", project="p", action="stop", force=True)
    assert stopped.statuses == ["Stopped"]
    clean = _Api(LAPSED, ["Stopped"])
    with pytest.raises(LxdError):
        _instances(clean, tmp_path).set_state(name="c1", project="p", action="stop")


def test_other_errors_are_not_waited_on(tmp_path: Path) -> None:
    api = _Api("Failed to start device", ["Running"])
    with pytest.raises(LxdError, match="device"):
        _instances(api, tmp_path).set_state(name="c1", project="p", action="start")


def test_a_lapsed_hard_restart_waits_for_running_but_a_clean_one_is_left_to_the_caller(
    tmp_path: Path,
) -> None:
    hard = _Api('Instance "restart" operation timed out after 30s', ["Stopped", "Running"])
    _instances(hard, tmp_path).set_state(name="c1", project="p", action="restart", force=True)
    assert hard.statuses == ["Running"]
    with pytest.raises(LxdError):
        _instances(_Api(LAPSED, ["Running"]), tmp_path).set_state(
            name="c1", project="p", action="restart"
        )
