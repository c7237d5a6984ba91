"""Limit hits as table rows: one server per row (`usage report --hits`), or one server's
counters one per row (`server hits`)."""

from __future__ import annotations

from collections.abc import Sequence

from containervps.schemas.limit_hits import LimitHits

__all__ = ["COLUMNS", "fields", "row"]

COLUMNS = (
    "since",
    "mem limit reached",
    "failcnt",
    "oom kills",
    "forks refused",
    "cpu throttled",
    "cpu wait s",
    "disk ios r/w",
    "io stall s",
    "egress dropped/over",
    "ingress dropped/over",
)


def _seconds(usec: int | None) -> str:
    return "-" if usec is None else f"{usec / 1e6:.1f}"


def row(h: LimitHits) -> Sequence[object]:
    """One server's counters in COLUMNS' order."""
    net = h.network
    return (
        h.since or "not running",
        "yes" if h.memory.limit_reached else "no",
        h.memory.failcnt,
        h.memory.oom_kills,
        h.pids.max_events,
        h.cpu.nr_throttled,
        _seconds(h.cpu.wait_usec),
        f"{h.disk.read_ios}/{h.disk.write_ios}",
        _seconds(h.disk.stall_usec),
        f"{net.egress.dropped}/{net.egress.overlimits}",
        f"{net.ingress.dropped}/{net.ingress.overlimits}",
    )


def fields(h: LimitHits) -> list[tuple[str, object, str]]:
    """(counter, value, where the kernel keeps it) for one server."""
    m, p, c, d, n, psi = h.memory, h.pids, h.cpu, h.disk, h.network, h.pressure
    out: list[tuple[str, object, str]] = [
        ("since", h.since or "not running", "the server's last start"),
        ("memory limit / peak", f"{m.limit_bytes} / {m.peak_bytes}", "memory.*max_usage_in_bytes"),
        ("memory limit reached", m.limit_reached, "high-water mark >= limit"),
        ("memory failcnt", m.failcnt, m.failcnt_reason),
        ("OOM kills", m.oom_kills, "memory.oom_control oom_kill over the subtree; kernel log"),
        ("forks refused", p.max_events, f"pids.events max over the subtree (limit {p.limit})"),
        ("CPU throttled periods", f"{c.nr_throttled} of {c.nr_periods}", f"quota {c.quota}"),
        ("CPU throttled s", _seconds(c.throttled_usec), "cpu.stat throttled_time"),
        ("CPU wait s", _seconds(c.wait_usec), c.reason),
        (
            "disk ios read/write",
            f"{d.read_ios}/{d.write_ios}",
            f"limits {d.read_iops_limit}/{d.write_iops_limit} iops",
        ),
        ("disk stall s", _seconds(d.stall_usec), d.reason),
    ]
    for direction, q in (("egress", n.egress), ("ingress", n.ingress)):
        where = f"tc qdisc on {q.device} ({q.shaped_by})" if q.shaped_by else "not shaped"
        out.append((f"{direction} dropped/overlimits", f"{q.dropped}/{q.overlimits}", where))
    for kind in ("cpu", "memory", "io"):
        value = getattr(psi, kind)
        shown = f"some {_seconds(value.some_usec)} s, avg10 {value.some_avg10}" if value else "-"
        out.append((f"pressure {kind}", shown, psi.reason or f"{kind}.pressure (cgroup v2)"))
    return out
