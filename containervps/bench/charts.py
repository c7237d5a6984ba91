"""PNG charts of a run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter

from containervps.bench.analysis import CANONICAL_RATIO, MIB
from containervps.bench.model import KIND_LABELS

LATENCY_TICKS = (0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300)
COLOURS = {"lxd": "tab:blue", "docker": "tab:green", "vm": "tab:red"}


def _label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind)


def memory_chart(run: dict[str, Any], figures: dict[str, Any], path: Path) -> None:
    """Used memory (MemTotal - MemAvailable) against N per kind; per-instance breakdown beside."""
    fig, (ax, parts) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=(3, 2))
    for kind in run["results"]:
        samples = [s for s in [kind.get("baseline"), *kind.get("steps", [])] if s]
        if not samples:
            continue
        base = samples[0]["used_bytes"]
        xs = [s["n"] for s in samples]
        colour = COLOURS.get(kind["kind"])
        ys = [(s["used_bytes"] - base) / MIB for s in samples]
        ax.plot(xs, ys, "o-", color=colour, label=f"{_label(kind['kind'])} (page cache kept)")
        dropped = [
            (s["n"], (s["used_after_drop_bytes"] - base) / MIB)
            for s in samples
            if s.get("used_after_drop_bytes") is not None
        ]
        if dropped:
            ax.plot(
                [d[0] for d in dropped],
                [d[1] for d in dropped],
                "x--",
                color=colour,
                alpha=0.6,
                label=f"{_label(kind['kind'])} (after drop_caches)",
            )
        slope = figures["kinds"][kind["kind"]].get("mib_per_instance")
        if slope is not None:
            ax.annotate(
                f"{slope:.1f} MiB/instance",
                (xs[-1], ys[-1]),
                textcoords="offset points",
                xytext=(8, -4),
                ha="left",
                va="top",
                color=colour,
                annotation_clip=False,
            )
    ax.set_xlabel("instances running (N)")
    ax.set_ylabel("host used memory above N=0 (MiB)")
    ax.set_title(f"Host memory vs instances - workload {run['spec']['workload']}")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    breakdown_bars(parts, figures)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def breakdown_bars(ax: Any, figures: dict[str, Any]) -> None:
    """Per-instance MiB by method: used-memory slope (both), host-side PSS, cgroup."""
    methods = (
        ("slope", lambda k: (k["slope_used"] or {}).get("mib_per_instance")),
        ("slope, caches dropped", lambda k: (k["slope_after_drop"] or {}).get("mib_per_instance")),
        ("PSS host-side process", lambda k: k["pss_mib_per_instance"]),
        ("cgroup", lambda k: k["cgroup_mib_per_instance"]),
    )
    kinds = list(figures["kinds"].values())
    width = 0.8 / len(methods)
    for m, (name, value) in enumerate(methods):
        values = [value(k) for k in kinds]
        xs = [pos + (m - (len(methods) - 1) / 2) * width for pos in range(len(kinds))]
        # A slope at or under zero is noise from other work on the host: no bar, a note.
        heights = [v if v and v > 0 else 0.0 for v in values]
        bars = ax.bar(xs, heights, width, label=name, alpha=0.85)
        ax.bar_label(bars, labels=[f"{v:.1f}" if v and v > 0 else "" for v in values], fontsize=7)
        for x, v in zip(xs, values, strict=True):
            if v is not None and v <= 0:
                ax.annotate(
                    "noise",
                    (x, 0.02),
                    xycoords=("data", "axes fraction"),
                    ha="center",
                    fontsize=6,
                    rotation=90,
                )
    ax.set_xticks(range(len(kinds)), [_label(k["kind"]).replace(" ", "\n", 1) for k in kinds])
    if kinds:
        ax.set_yscale("log")
    ax.set_ylabel("MiB per instance (log scale)")
    ax.set_title("Memory per instance by method")
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", alpha=0.3)


def latency_chart(run: dict[str, Any], path: Path) -> None:
    """Start latency (request to ready) distribution per kind, as box plots with points."""
    fig, ax = plt.subplots(figsize=(8, 5))
    data, labels = [], []
    for kind in run["results"]:
        values = [
            i["ready_s"]
            for i in kind.get("instances", [])
            if i.get("error") is None and i.get("ready_s") is not None
        ]
        if values:
            data.append(values)
            labels.append(f"{_label(kind['kind'])}\n(n={len(values)})")
    if data:
        ax.boxplot(data, whis=(1, 99), showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels)
        for pos, values in enumerate(data, start=1):
            offsets = [pos + (k % 7 - 3) * 0.03 for k in range(len(values))]
            ax.plot(offsets, values, ".", alpha=0.5, color="black", markersize=4)
        ax.set_yscale("log")
        low, high = min(min(v) for v in data), max(max(v) for v in data)
        ticks = [t for t in LATENCY_TICKS if low / 1.6 <= t <= high * 1.6]
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("request to ready (s, log scale)")
    ax.set_title("Start latency per instance (box: p25-p75, whiskers: p1-p99)")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def density_chart(run: dict[str, Any], figures: dict[str, Any], path: Path) -> None:
    """Projected instances per host at the headroom, and the measured ratio beside the claims."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5))
    kinds = [k for k in figures["kinds"].values() if k.get("projected_max_instances")]
    left.bar(
        [_label(k["kind"]).replace(" ", "\n", 1) for k in kinds],
        [k["projected_max_instances"] for k in kinds],
        color=[COLOURS.get(k["kind"]) for k in kinds],
    )
    for pos, k in enumerate(kinds):
        left.annotate(
            str(k["projected_max_instances"]),
            (pos, k["projected_max_instances"]),
            ha="center",
            va="bottom",
        )
    left.set_ylabel(f"projected instances per host ({figures['headroom']:.0%} memory kept free)")
    left.set_title("Max density projected from the memory slope")
    ratio = figures["ratios"].get("vm_vs_lxd")
    bars = {"article (low)": 5.0, "article (high)": 6.0, "Canonical": CANONICAL_RATIO}
    if ratio is not None:
        bars = {"measured here": ratio, **bars}
    right.bar(
        list(bars),
        list(bars.values()),
        color=["tab:blue" if b == "measured here" else "lightgrey" for b in bars],
    )
    for pos, value in enumerate(bars.values()):
        right.annotate(f"{value:.1f}x", (pos, value), ha="center", va="bottom")
    right.set_ylabel("containers per VM in the same memory")
    right.set_title("Density ratio: LXD containers vs VMs")
    for ax in (left, right):
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_charts(run: dict[str, Any], figures: dict[str, Any], directory: Path) -> list[Path]:
    """Write every chart into ``directory``; return the files."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [
        directory / "memory_vs_n.png",
        directory / "start_latency.png",
        directory / "density_ratio.png",
    ]
    memory_chart(run, figures, paths[0])
    latency_chart(run, paths[1])
    density_chart(run, figures, paths[2])
    return paths
