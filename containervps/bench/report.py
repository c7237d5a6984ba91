"""Writing a run's reports: raw JSON, a Markdown summary and an HTML page with PNG charts."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from containervps.bench.analysis import analyse, ratio_sentence
from containervps.bench.charts import render_charts
from containervps.bench.model import KIND_LABELS

RAW_NAME = "results.json"


def _f(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def summary_rows(figures: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(metric, value per kind) rows shared by the Markdown and HTML tables."""
    kinds = list(figures["kinds"].values())

    def row(name: str, key: Any) -> tuple[str, list[str]]:
        return name, [key(k) for k in kinds]

    return [
        row("accelerator", lambda k: k.get("accelerator") or "host kernel"),
        row("instances up (failed)", lambda k: f"{k['instances_up']} ({k['instances_failed']})"),
        row(
            "MiB per instance, used-memory slope",
            lambda k: _f(k["slope_used"] and k["slope_used"]["mib_per_instance"]),
        ),
        row(
            "MiB per instance, slope after drop_caches",
            lambda k: _f(k["slope_after_drop"] and k["slope_after_drop"]["mib_per_instance"]),
        ),
        row(
            "fit r² of that slope (1 = a clean line)",
            lambda k: _f((k["slope_after_drop"] or {}).get("r2"), "{:.2f}"),
        ),
        row("PSS of host-side process per instance (MiB)", lambda k: _f(k["pss_mib_per_instance"])),
        row("cgroup memory per instance (MiB)", lambda k: _f(k["cgroup_mib_per_instance"])),
        row(
            "request to running p50 / p95 / p99 (s)",
            lambda k: " / ".join(_f(k["running_s"][q], "{:.2f}") for q in ("p50", "p95", "p99")),
        ),
        row(
            "request to ready p50 / p95 / p99 (s)",
            lambda k: " / ".join(_f(k["ready_s"][q], "{:.2f}") for q in ("p50", "p95", "p99")),
        ),
        row("creation throughput (instances/s)", lambda k: _f(k["throughput_per_s"], "{:.2f}")),
        row(
            "probe: single instance / at max N p50 (ms)",
            lambda k: f"{_f(k['probe_baseline_ms'])} / {_f((k['probe_last_ms'] or {}).get('p50'))}",
        ),
        row(
            "projected max instances (headroom kept)",
            lambda k: _f(k["projected_max_instances"], "{}"),
        ),
        row("CPU job inside / on host", lambda k: _f(k["cpu_overhead_ratio"], "{:.2f}x")),
        row("4 KiB direct-write IOPS inside / on host", lambda k: _f(k["iops_ratio"], "{:.2f}x")),
        row("stopped because", lambda k: k.get("stop_reason") or k.get("error") or "-"),
    ]


def render_markdown(run: dict[str, Any], figures: dict[str, Any]) -> str:
    """The human summary of a run."""
    spec, host = run["spec"], run.get("host", {})
    kinds = list(figures["kinds"])
    lines = [
        f"# Density benchmark {spec['run_id']}",
        "",
        f"Status **{run['status']}**, {run['started_at']} to {run.get('finished_at') or '-'}. "
        f"Workload `{spec['workload']}`{' (active load)' if spec.get('active') else ' (idle)'}, "
        f"{spec['memory_mib']} MiB and {spec['vcpus']} vCPU per instance, "
        f"{'ramp' if spec.get('ramp') else 'steps ' + json.dumps(spec.get('steps'))}.",
        "",
        ratio_sentence(figures, workload=spec["workload"], active=bool(spec.get("active"))),
        "",
        "| metric | " + " | ".join(KIND_LABELS.get(k, k) for k in kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for name, values in summary_rows(figures):
        lines.append(f"| {name} | " + " | ".join(values) + " |")
    ratios = figures["ratios"]
    lines += [
        "",
        f"Density ratio (VM MiB / LXD MiB per instance): {_f(ratios.get('vm_vs_lxd'), '{:.1f}x')}; "
        f"Docker vs LXD: {_f(ratios.get('docker_vs_lxd'), '{:.2f}x')}.",
        "",
        "## Host",
        "",
        *[f"- {k}: {v}" for k, v in host.items()],
        "",
        "## How it was measured",
        "",
        "- Memory per instance: least-squares slope of host MemTotal - MemAvailable against N, "
        "sampled after each batch settled; again after `echo 3 > /proc/sys/vm/drop_caches`.",
        "- PSS: host-side process per instance ([lxc monitor], containerd-shim, qemu). "
        "cgroup: the instance's memory cgroup (for VMs a cgroup holding the QEMU process).",
        "- Ready: LXD/Docker: a command answers inside (sshd listening for debian-12); "
        "VM: the guest agent printed its marker on the serial console.",
        "- Projected max instances count memory only (MemTotal minus the headroom, minus N=0 "
        "use, over the slope); other caps (isolated idmaps, PIDs, disk, CPU) are not in it.",
        "- Other work on the host during the run shows up as noise in the used-memory "
        "samples; compare the slope with the PSS and cgroup columns.",
        "",
        "Charts: `memory_vs_n.png`, `start_latency.png`, `density_ratio.png`; raw data: "
        f"`{RAW_NAME}`.",
    ]
    for kind in run.get("results", []):
        facts = kind.get("facts") or {}
        if facts.get("accelerator") == "tcg":
            tb = facts.get("tcg_tb_mib")
            lines += [
                "",
                "VMs ran under TCG (software emulation): QEMU's translation cache "
                f"({f'capped at {tb} MiB' if tb else 'up to 1 GiB by default'}) is part of each "
                "VM's host memory here and every guest instruction is emulated; KVM guests "
                "would cost less memory and CPU.",
            ]
        if facts.get("guest_changes"):
            lines += ["", f"VM guest changes: {'; '.join(facts['guest_changes'])}."]
    if run.get("error"):
        lines += ["", f"**Error:** {run['error']}"]
    return "\n".join(lines) + "\n"


def render_html(run: dict[str, Any], figures: dict[str, Any]) -> str:
    """A self-contained page (charts referenced next to it) with the summary table."""
    spec = run["spec"]
    kinds = list(figures["kinds"])
    head = "".join(f"<th>{html.escape(KIND_LABELS.get(k, k))}</th>" for k in kinds)
    body = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in values)
        + "</tr>"
        for name, values in summary_rows(figures)
    )
    host = "".join(
        f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>"
        for k, v in run.get("host", {}).items()
    )
    sentence = ratio_sentence(figures, workload=spec["workload"], active=bool(spec.get("active")))
    charts = "".join(
        f'<figure><img src="{name}" alt="{name}"><figcaption>{html.escape(caption)}</figcaption>'
        "</figure>"
        for name, caption in (
            ("memory_vs_n.png", "Host used memory above N=0 against running instances."),
            ("start_latency.png", "Request-to-ready start latency per instance."),
            ("density_ratio.png", "Projected instances per host and the density ratio."),
        )
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Density benchmark {html.escape(spec["run_id"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
img{{max-width:100%}}</style></head><body>
<h1>Density benchmark {html.escape(spec["run_id"])}</h1>
<p>Status <b>{html.escape(run["status"])}</b>; workload <code>{html.escape(spec["workload"])}
</code>; {spec["memory_mib"]} MiB / {spec["vcpus"]} vCPU per instance.</p>
<p><b>{html.escape(sentence)}</b></p>
<table><tr><th>metric</th>{head}</tr>{body}</table>
{charts}
<h2>Host</h2><ul>{host}</ul>
<p>Raw data: <a href="{RAW_NAME}">{RAW_NAME}</a></p>
</body></html>
"""


def write_reports(run: dict[str, Any], directory: Path) -> dict[str, Path]:
    """Write results.json, summary.md, report.html and the charts; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    figures = analyse(run)
    raw = directory / RAW_NAME
    raw.write_text(json.dumps({**run, "figures": figures}, indent=1, default=str))
    charts = render_charts(run, figures, directory)
    markdown = directory / "summary.md"
    markdown.write_text(render_markdown(run, figures))
    page = directory / "report.html"
    page.write_text(render_html(run, figures))
    return {
        "json": raw,
        "markdown": markdown,
        "html": page,
        **{p.stem: p for p in charts},
    }


def load_raw(directory: Path) -> dict[str, Any]:
    """The raw run document of a report directory (figures are recomputed, not trusted)."""
    data: dict[str, Any] = json.loads((directory / RAW_NAME).read_text())
    data.pop("figures", None)
    return data
