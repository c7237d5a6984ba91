"""A container's isolated idmap must lie inside root's subuid range (LXD 5.0.2 sometimes hands
out base 65536, below it): the create then makes the container again."""

from __future__ import annotations

from pathlib import Path

from containervps.lxd.idmaps import in_subuid_range


def test_bases_inside_root_range_pass_and_others_fail(tmp_path: Path) -> None:
    subuid = tmp_path / "subuid"
    subuid.write_text("lxd:100000:65536\nroot:100000:655360\n")  # 10 maps from 100000
    isolated = {"security.idmap.isolated": "true"}

    def ok(base: int) -> bool:
        return in_subuid_range({**isolated, "volatile.idmap.base": str(base)}, subuid=subuid)

    assert ok(100000) and ok(100000 + 9 * 65536)
    assert not ok(65536)  # what LXD 5.0.2 gave under concurrent allocation
    assert not ok(100000 + 10 * 65536)  # past the end of the range
    # Nothing to compare: not isolated, no base yet, no root entry.
    assert in_subuid_range({"volatile.idmap.base": "65536"}, subuid=subuid)
    assert in_subuid_range(isolated, subuid=subuid)
    assert in_subuid_range({**isolated, "volatile.idmap.base": "65536"}, subuid=tmp_path / "x")
