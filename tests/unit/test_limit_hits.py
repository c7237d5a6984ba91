"""Limit hits read from fixture cgroup trees and tc output: where each counter is summed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from containervps.cli import hits_table
from containervps.services.metering import cgroups
from containervps.services.metering.kernel_log import OomKill
from containervps.services.metering.limit_hits import Host, Target, hits, qdiscs

CG = "lxc.payload.p_web"
STARTED = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
BOOTED = STARTED.timestamp() - 1000  # the host booted 1000 s before the server started
PSI = (
    "some avg10=1.50 avg60=0.40 avg300=0.10 total={some}\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total={full}\n"
)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _server_tree(root: Path) -> None:
    """A server at its memory+swap limit with kills, refused forks and throttling counted in
    child cgroups (as cgroup v1 counts them), and its pressure in the v2 hierarchy."""
    m, p, c, b, u = (f"{k}/{CG}" for k in ("memory", "pids", "cpu", "blkio", "unified"))
    _write(
        root,
        {
            f"{m}/memory.limit_in_bytes": "134217728\n",
            f"{m}/memory.memsw.limit_in_bytes": "134217728\n",
            f"{m}/memory.max_usage_in_bytes": "134217728\n",
            f"{m}/memory.memsw.max_usage_in_bytes": "134217728\n",
            f"{m}/memory.failcnt": "0\n",
            f"{m}/memory.memsw.failcnt": "0\n",
            f"{m}/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            f"{m}/system.slice/memory.failcnt": "0\n",
            f"{m}/system.slice/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            f"{m}/hog/memory.limit_in_bytes": "33554432\n",
            f"{m}/hog/memory.failcnt": "433\n",
            f"{m}/hog/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            f"{p}/pids.max": "30\n",
            f"{p}/pids.current": "4\n",
            f"{p}/pids.events": "max 1\n",
            f"{p}/bomb/pids.events": "max 73\n",
            f"{c}/cpu.cfs_quota_us": "-1\n",
            f"{c}/cpu.cfs_period_us": "100000\n",
            f"{c}/cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
            f"{c}/capped/cpu.stat": "nr_periods 21\nnr_throttled 20\nthrottled_time 1537345777\n",
            f"{b}/blkio.throttle.io_serviced_recursive": (
                "7:0 Read 135\n7:0 Write 60\n7:0 Sync 195\n7:0 Async 0\n7:0 Total 195\n"
                "7:1 Read 5\n7:1 Write 1\nTotal 201\n"
            ),
            f"{b}/blkio.throttle.io_service_bytes_recursive": "7:0 Read 4096\n7:0 Write 245760\n",
            f"{b}/blkio.throttle.read_iops_device": "7:0 2000\n",
            f"{b}/blkio.throttle.write_iops_device": "7:0 20\n",
            f"{b}/blkio.throttle.read_bps_device": "",
            f"{b}/blkio.throttle.write_bps_device": "7:0 10000000\n",
            "unified/cgroup.procs": "",
            f"{u}/cpu.pressure": PSI.format(some=3883673, full=172691),
            f"{u}/memory.pressure": PSI.format(some=631167, full=618373),
            f"{u}/io.pressure": PSI.format(some=7675315, full=7443522),
        },
    )


TC = [
    {"kind": "htb", "handle": "1:", "dev": "vethA", "root": True, "packets": 900, "drops": 12,
     "overlimits": 340},
    {"kind": "ingress", "handle": "ffff:", "dev": "vethA", "parent": "ffff:fff1", "packets": 0,
     "drops": 0, "overlimits": 0},
    {"kind": "htb", "handle": "1:", "dev": "cveIFB", "root": True, "packets": 1500, "drops": 3,
     "overlimits": 77},
    {"kind": "noqueue", "handle": "0:", "dev": "vethB", "root": True, "packets": 5, "drops": 0,
     "overlimits": 0},
]  # fmt: skip


def _host(kills: list[OomKill] | None = None) -> Host:
    return Host(qdiscs=qdiscs(json.dumps(TC)), kills=kills or [], booted=BOOTED)


def _target(**kw: object) -> Target:
    base: dict[str, object] = {
        "cgroup": CG,
        "since": STARTED,
        "veth": "vethA",
        "ifb": "cveIFB",
        "egress_by": "platform",
    }
    return Target(**{**base, **kw})  # type: ignore[arg-type]


def test_counters_are_summed_where_the_kernel_records_them(tmp_path: Path) -> None:
    _server_tree(tmp_path)
    got = hits(tmp_path, _target(), _host())
    assert got.since == "2026-12-07T12:00:00Z"
    # Kills count in the victims' cgroups, failures at the cgroup whose limit was hit.
    assert got.memory.oom_kills == 3 and got.memory.failcnt == 433
    assert got.memory.limit_bytes == 128 << 20 and got.memory.limit_reached
    assert "memory+swap" in got.memory.failcnt_reason and not got.memory.under_oom
    assert (got.pids.limit, got.pids.current, got.pids.max_events) == (30, 4, 74)
    assert got.cpu.quota == "none" and "pinned" in got.cpu.reason
    assert (got.cpu.nr_periods, got.cpu.nr_throttled) == (21, 20)
    assert got.cpu.throttled_usec == 1537345 and got.cpu.wait_usec == 3883673
    assert (got.disk.read_ios, got.disk.write_ios) == (140, 61)
    assert (got.disk.read_bytes, got.disk.write_bytes) == (4096, 245760)
    assert (got.disk.read_iops_limit, got.disk.write_iops_limit) == (2000, 20)
    assert (got.disk.read_bps_limit, got.disk.write_bps_limit) == (None, 10_000_000)
    assert got.disk.throttled_ios is None and got.disk.stall_usec == 7675315
    assert got.pressure.available and got.pressure.memory is not None
    assert got.pressure.memory.some_usec == 631167 and got.pressure.memory.full_usec == 618373
    assert got.pressure.memory.some_avg10 == 1.5


def test_shaping_counters_come_from_each_direction_s_queue(tmp_path: Path) -> None:
    _server_tree(tmp_path)
    net = hits(tmp_path, _target(), _host()).network
    assert (net.egress.shaped_by, net.egress.device) == ("platform", "cveIFB")
    assert (net.egress.dropped, net.egress.overlimits, net.egress.sent_packets) == (3, 77, 1500)
    assert (net.ingress.shaped_by, net.ingress.dropped, net.ingress.overlimits) == ("lxd", 12, 340)
    # LXD's own egress limit polices on the veth's ingress; no shaping: zeros, not shaped.
    lxd = hits(tmp_path, _target(egress_by="lxd"), _host()).network.egress
    assert (lxd.shaped_by, lxd.device, lxd.dropped) == ("lxd", "vethA", 0)
    none = hits(tmp_path, _target(veth="vethB", egress_by=""), _host()).network
    assert none.egress.shaped_by == "" and none.ingress.shaped_by == ""


def test_logged_kills_count_since_the_server_started(tmp_path: Path) -> None:
    _server_tree(tmp_path)

    def kill(seq: int, at: float, memcg: str = f"/{CG}") -> OomKill:
        return OomKill(seq, memcg, f"{memcg}/gone.service", "tail", seq, int(at * 1e6))

    # The subtree lost the kills of cgroups removed since: the log has them.
    logged = [kill(i, 1000 + i) for i in range(1, 6)]
    before = [kill(9, 999), kill(10, 500)]  # a former run of the same server
    other = [kill(11, 1200, "/lxc.payload.p_other")]
    got = hits(tmp_path, _target(), _host(logged + before + other)).memory
    assert got.oom_kills == 5  # more than the subtree's 3


def test_one_device_s_qdiscs_are_its_own() -> None:
    one = [{k: v for k, v in q.items() if k != "dev"} for q in TC[:2]]  # tc show dev vethA
    assert qdiscs(json.dumps(one), device="vethA") == {"vethA": one}
    assert qdiscs("") == {}


def test_a_stopped_server_reads_zeros_and_no_pressure(tmp_path: Path) -> None:
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.procs").write_text("")
    got = hits(tmp_path, _target(since=None, veth=None), _host())
    assert got.since is None and not got.pressure.available
    assert got.pressure.reason == "the server is not running"
    assert got.memory.oom_kills == 0 and got.pids.limit is None and got.cpu.wait_usec is None
    assert got.disk.read_iops_limit is None and got.network.ingress.shaped_by == ""


def test_pressure_unavailable_says_why(tmp_path: Path) -> None:
    _server_tree(tmp_path)
    for f in (tmp_path / "unified" / CG).iterdir():
        f.unlink()
    got = hits(tmp_path, _target(), _host()).pressure
    assert not got.available and "no pressure" in got.reason
    (tmp_path / "unified" / "cgroup.procs").unlink()
    got = hits(tmp_path, _target(), _host()).pressure
    assert not got.available and "no cgroup v2 hierarchy" in got.reason


def test_cgroup_files_parse(tmp_path: Path) -> None:
    _write(tmp_path, {"a/x": "nr_periods 3\nbad line\nk notanumber\n", "a/b/x": "nr_periods 4\n"})
    assert cgroups.keyed(tmp_path / "a" / "x") == {"nr_periods": 3}
    assert cgroups.keyed(tmp_path / "missing") == {}
    assert cgroups.subtree_sum(tmp_path / "a", "x", "nr_periods") == 7
    assert cgroups.read_int(tmp_path / "missing") == 0
    assert cgroups.payload("p", "web") == "lxc.payload.p_web"
    assert cgroups.unified_root(tmp_path) is None
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    assert cgroups.unified_root(tmp_path) == tmp_path  # a cgroup v2 host


def test_cli_rows_show_the_counters(tmp_path: Path) -> None:
    _server_tree(tmp_path)
    got = hits(tmp_path, _target(), _host())
    row = dict(zip(hits_table.COLUMNS, hits_table.row(got), strict=True))
    assert row["forks refused"] == 74 and row["oom kills"] == 3 and row["cpu wait s"] == "3.9"
    assert row["ingress dropped/over"] == "12/340" and row["disk ios r/w"] == "140/61"
    shown = {name: value for name, value, _ in hits_table.fields(got)}
    assert shown["CPU throttled periods"] == "20 of 21" and shown["OOM kills"] == 3
    stopped = hits(tmp_path / "none", _target(since=None), _host())
    assert hits_table.row(stopped)[0] == "not running"
    assert {n: v for n, v, _ in hits_table.fields(stopped)}["pressure cpu"] == "-"
