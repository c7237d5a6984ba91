"""The figures a scale run is judged by, computed from its raw steps (never stored apart)."""

from __future__ import annotations

from typing import Any

from containervps.bench.stats import linear_fit

__all__ = ["FIGURES", "analyse", "ramp_figures"]

WINDOW = 100  # "the first 100" and "the last 100" servers of a ramp

# Per step: key, label, unit (charts and the step table).
FIGURES = (
    ("creates_per_s", "creates per second (batch)", "1/s"),
    ("create_p50_s", "create to running p50", "s"),
    ("create_p95_s", "create to running p95", "s"),
    ("used_mib", "host used memory (after drop_caches)", "MiB"),
    ("slab_unreclaimable_mib", "unreclaimable slab", "MiB"),
    ("processes", "host processes", ""),
    ("lxd_cpu_pct", "LXD CPU during the batch", "% of a core"),
    ("lxd_rss_mib", "LXD RSS", "MiB"),
    ("api_cpu_pct", "API CPU during the batch", "% of a core"),
    ("api_rss_mib", "API RSS", "MiB"),
    ("list_p99_ms", "GET /v1/servers p99", "ms"),
    ("show_p99_ms", "GET /v1/servers/{id} p99", "ms"),
    ("sample_pass_s", "usage sampling pass", "s"),
    ("reconcile_pass_s", "reconcile dry-run pass", "s"),
    ("lxd_errors", "LXD error lines in the batch", ""),
)


def _rate(steps: list[dict[str, Any]]) -> float | None:
    created, wall = sum(s["created"] for s in steps), sum(s["wall_s"] for s in steps)
    return created / wall if wall else None


def _per_server(ramp: dict[str, Any], key: str) -> float | None:
    """Slope of ``key`` against N over the baseline and every step."""
    points = [(0, ramp["baseline"].get(key))] if ramp.get("baseline") else []
    points += [(s["n"], s[key]) for s in ramp["steps"]]
    points = [(n, v) for n, v in points if v is not None]
    fit = linear_fit([n for n, _ in points], [v for _, v in points])
    return fit.slope if fit else None


def ramp_figures(ramp: dict[str, Any]) -> dict[str, Any]:
    steps = ramp["steps"]
    top = steps[-1] if steps else {}
    n = top.get("n", 0)
    first = [s for s in steps if s["n"] <= WINDOW] or steps[:1]
    last = [s for s in steps if s["n"] > n - WINDOW] or steps[-1:]
    first_rate, last_rate = _rate(first), _rate(last)
    return {
        "n": n,
        "failed": sum(s["failed"] for s in steps),
        "creates_per_s_first": first_rate,
        "creates_per_s_last": last_rate,
        "last_vs_first": last_rate / first_rate if first_rate and last_rate else None,
        "create_p50_s_top": top.get("create_p50_s"),
        "mib_per_server": _per_server(ramp, "used_mib"),
        "slab_mib_per_server": _per_server(ramp, "slab_unreclaimable_mib"),
        "processes_per_server": _per_server(ramp, "processes"),
        "loops_per_server": _per_server(ramp, "loop_devices"),
        "mounts_per_server": _per_server(ramp, "mounts"),
        "list_p99_ms_top": top.get("list_p99_ms"),
        "sample_pass_s_top": top.get("sample_pass_s"),
        "reconcile_pass_s_top": top.get("reconcile_pass_s"),
        "lxd_errors": sum(s["lxd_errors"] for s in steps),
        "lxd_transaction_timeouts": sum(s["lxd_transaction_timeouts"] for s in steps),
    }


def analyse(run: dict[str, Any]) -> dict[str, Any]:
    """Per ramp figures, and the API's create p50 over raw LXD's at the same top N."""
    ramps = {r["path"]: ramp_figures(r) for r in run["ramps"]}
    ratio = None
    api, raw = ramps.get("api"), ramps.get("raw")
    if api and raw and api["n"] == raw["n"] and api["create_p50_s_top"] and raw["create_p50_s_top"]:
        ratio = api["create_p50_s_top"] / raw["create_p50_s_top"]
    return {"ramps": ramps, "api_vs_raw_p50": ratio}
