"""Figures derived from a run's raw JSON: memory slopes, latency percentiles, density ratios."""

from __future__ import annotations

from typing import Any

from containervps.bench.stats import linear_fit, summary

MIB = 1 << 20
ARTICLE_RATIO = "5-6x"
CANONICAL_RATIO = 14.5


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _slope_mib(points: list[tuple[int, int | None]]) -> dict[str, Any] | None:
    pts = [(float(n), v / MIB) for n, v in points if v is not None]
    fit = linear_fit([p[0] for p in pts], [p[1] for p in pts])
    if fit is None:
        return None
    return {"mib_per_instance": fit.slope, "intercept_mib": fit.intercept, "r2": fit.r2}


def kind_figures(kind: dict[str, Any], *, headroom: float) -> dict[str, Any]:
    """Memory per instance, latency percentiles, throughput and projected max density."""
    samples = [s for s in [kind.get("baseline"), *kind.get("steps", [])] if s]
    used = _slope_mib([(s["n"], s["used_bytes"]) for s in samples])
    dropped = _slope_mib([(s["n"], s["used_after_drop_bytes"]) for s in samples])
    last = kind["steps"][-1] if kind.get("steps") else None
    ok = [i for i in kind.get("instances", []) if i.get("error") is None]
    throughput = [
        s["launched"] / s["batch_seconds"] for s in kind.get("steps", []) if s["batch_seconds"] > 0
    ]
    slope = (dropped or used or {}).get("mib_per_instance")
    projected = None
    if slope and slope > 0 and samples:
        total = samples[0]["used_bytes"] + samples[0]["available_bytes"]
        budget = total * (1 - headroom) - samples[0]["used_bytes"]
        projected = int(budget / MIB / slope)
    overhead = dict(kind.get("overhead") or {})
    cpu_ratio = None
    if overhead.get("cpu_host_s") and overhead.get("cpu_inside_s"):
        cpu_ratio = overhead["cpu_inside_s"] / overhead["cpu_host_s"]
    iops = overhead.get("iops") or {}
    iops_ratio = None
    if iops.get("inside_iops") and iops.get("host_iops"):
        iops_ratio = iops["inside_iops"] / iops["host_iops"]
    return {
        "kind": kind["kind"],
        "instances_up": len(ok),
        "instances_failed": len(kind.get("instances", [])) - len(ok),
        "max_n": last["n"] if last else 0,
        "slope_used": used,
        "slope_after_drop": dropped,
        "mib_per_instance": slope,
        "pss_mib_per_instance": _mean([b / MIB for b in last["pss_bytes"]]) if last else None,
        "cgroup_mib_per_instance": _mean([b / MIB for b in last["cgroup_bytes"]]) if last else None,
        "running_s": summary([i["running_s"] for i in ok if i.get("running_s") is not None]),
        "ready_s": summary([i["ready_s"] for i in ok if i.get("ready_s") is not None]),
        "throughput_per_s": _mean(throughput),
        "probe_baseline_ms": kind.get("probe_baseline_ms"),
        "probe_last_ms": summary(last["probe_ms"]) if last else None,
        "projected_max_instances": projected,
        "cpu_overhead_ratio": cpu_ratio,
        "iops_ratio": iops_ratio,
        "stop_reason": kind.get("stop_reason"),
        "error": kind.get("error"),
        "accelerator": (kind.get("facts") or {}).get("accelerator"),
    }


def analyse(run: dict[str, Any]) -> dict[str, Any]:
    """Every figure the reports show, computed from the raw run document."""
    headroom = float(run["spec"].get("headroom", 0.1))
    kinds = {k["kind"]: kind_figures(k, headroom=headroom) for k in run.get("results", [])}
    ratios: dict[str, float | None] = {}
    lxd = kinds.get("lxd", {}).get("mib_per_instance")
    for other in ("vm", "docker"):
        theirs = kinds.get(other, {}).get("mib_per_instance")
        # A slope at or under zero is noise (other work on the host), not a measurement.
        ratios[f"{other}_vs_lxd"] = theirs / lxd if lxd and theirs and lxd > 0 < theirs else None
    return {"kinds": kinds, "ratios": ratios, "headroom": headroom}


def ratio_sentence(figures: dict[str, Any], *, workload: str, active: bool = False) -> str:
    """The measured density ratio set beside the article's and Canonical's claims."""
    ratio = figures["ratios"].get("vm_vs_lxd")
    vm = figures["kinds"].get("vm", {})
    if ratio is None:
        return (
            "No container-to-VM density ratio could be measured in this run "
            f"(the article claims {ARTICLE_RATIO}, Canonical {CANONICAL_RATIO}x)."
        )
    accel = vm.get("accelerator") or "?"
    state = "active" if active else "idle"
    verdict = "above" if ratio > CANONICAL_RATIO else "between" if ratio >= 5 else "below"
    where = {
        "above": f"above both the article's {ARTICLE_RATIO} and Canonical's {CANONICAL_RATIO}x",
        "between": f"at or above the article's {ARTICLE_RATIO} and below Canonical's "
        f"{CANONICAL_RATIO}x",
        "below": f"below the article's {ARTICLE_RATIO} (and Canonical's {CANONICAL_RATIO}x)",
    }[verdict]
    return (
        f"On this host, for the {workload} workload, one {state} QEMU VM ({accel.upper()}) used "
        f"{vm.get('mib_per_instance') or 0:.0f} MiB of host memory against "
        f"{figures['kinds']['lxd']['mib_per_instance']:.1f} MiB for one LXD system container: "
        f"{ratio:.1f}x more containers than VMs fit in the same memory, {where}."
    )
