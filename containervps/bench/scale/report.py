"""A scale run's reports: results.json (raw steps), summary.md, report.html and one PNG per
figure against N (both ramps on each chart)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from containervps.bench.scale.analysis import FIGURES, analyse

__all__ = ["headline", "render_markdown", "write_reports"]

RAW_NAME = "results.json"
LABELS = {"api": "through the API", "raw": "raw LXD (pylxd)"}
# Ramp figures: key, label, format.
SUMMARY = (
    ("n", "servers reached", "{:.0f}"),
    ("failed", "failed creates", "{:.0f}"),
    ("creates_per_s_first", "creates/s over the first 100", "{:.2f}"),
    ("creates_per_s_last", "creates/s over the last 100", "{:.2f}"),
    ("last_vs_first", "last 100 / first 100", "{:.2f}x"),
    ("create_p50_s_top", "create to running p50 at the top", "{:.2f} s"),
    ("mib_per_server", "host memory per server (slope)", "{:.1f} MiB"),
    ("slab_mib_per_server", "unreclaimable slab per server", "{:.2f} MiB"),
    ("processes_per_server", "host processes per server", "{:.2f}"),
    ("loops_per_server", "loop devices per server", "{:.2f}"),
    ("mounts_per_server", "mounts per server (host view)", "{:.2f}"),
    ("list_p99_ms_top", "GET /v1/servers p99 at the top", "{:.1f} ms"),
    ("sample_pass_s_top", "usage sampling pass at the top", "{:.2f} s"),
    ("reconcile_pass_s_top", "reconcile pass at the top", "{:.2f} s"),
    ("lxd_errors", "LXD error lines", "{:.0f}"),
    ("lxd_transaction_timeouts", "LXD transaction timeouts", "{:.0f}"),
)


def _f(value: Any, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def summary_table(figures: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    paths = list(figures["ramps"])
    rows = [
        [label, *(_f(figures["ramps"][p].get(key), fmt) for p in paths)]
        for key, label, fmt in SUMMARY
    ]
    return ["figure", *(LABELS.get(p, p) for p in paths)], rows


def _end_rows(run: dict[str, Any]) -> list[list[str]]:
    rows = []
    for ramp in run["ramps"]:
        seen = ramp.get("reachable") or {}
        checks = ", ".join(
            f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in seen.items()
            if k != "exec_failures"
        )
        checks += "".join(f"; {f}" for f in seen.get("exec_failures", []))
        delete = _f(ramp.get("delete_s"), "{:.0f} s")
        left = "; ".join(ramp.get("leftovers") or []) or "nothing"
        rows.append(
            [
                LABELS.get(ramp["path"], ramp["path"]),
                checks or "n/a",
                f"{ramp.get('deleted', 0)} in {delete}",
                left,
            ]
        )
    return rows


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


STEP_KEYS = (
    "n",
    "creates_per_s",
    "create_p50_s",
    "used_mib",
    "slab_unreclaimable_mib",
    "processes",
    "lxd_cpu_pct",
    "list_p99_ms",
    "sample_pass_s",
    "reconcile_pass_s",
    "lxd_errors",
)


def _step_rows(ramp: dict[str, Any]) -> list[list[str]]:
    return [
        [
            _f(s.get(k), "{:.0f}" if k in ("n", "processes", "lxd_errors") else "{:.2f}")
            for k in STEP_KEYS
        ]
        for s in ramp["steps"]
    ]


def _prediction(run: dict[str, Any]) -> list[str]:
    """With --until-full: `containervps capacity`'s prediction beside what the API reached."""
    predicted = run.get("host", {}).get("capacity_prediction")
    api = next((r for r in run["ramps"] if r["path"] == "api"), None)
    if not predicted or api is None:
        return []
    reached = api["steps"][-1]["n"] if api["steps"] else 0
    return [
        f"Until full, with the operator's ratios: `containervps capacity` predicted "
        f"**{predicted['fits']}** more `{run['spec']['plan']}` servers (binding: "
        f"`{predicted['binding']}`); the API admitted **{reached}**. "
        f"{api.get('stopped_because', '')}",
        "",
    ]


def render_markdown(run: dict[str, Any], figures: dict[str, Any]) -> str:
    spec = run["spec"]
    head, rows = summary_table(figures)
    ratio = _f(figures.get("api_vs_raw_p50"), "{:.2f}x")
    parts = [
        f"# Scale benchmark {spec['run_id']}",
        "",
        f"Status **{run['status']}**{': ' + run['error'] if run.get('error') else ''}. "
        f"`{spec['image']}` on `{spec['plan']}`, target {spec['target']}, batches of "
        f"{spec['batch']}, {spec['concurrency']} creates at once, disk layout "
        f"`{spec['disk_layout']}`.",
        "",
        *_prediction(run),
        f"API create-to-running p50 over raw LXD's at the top: **{ratio}**.",
        "",
        _md_table(head, rows),
        "",
        "## At the top, and after deleting",
        "",
        _md_table(["ramp", "checks", "deleted", "left behind"], _end_rows(run)),
    ]
    for ramp in run["ramps"]:
        parts += ["", f"## Steps: {LABELS.get(ramp['path'], ramp['path'])}", ""]
        parts.append(_md_table(list(STEP_KEYS), _step_rows(ramp)))
        if ramp.get("stopped_because"):
            parts += ["", f"Stopped: {ramp['stopped_because']}."]
        if ramp.get("errors"):
            parts += ["", "Failed creates (first 5):", *(f"- `{e}`" for e in ramp["errors"][:5])]
    host = run.get("host", {})
    parts += ["", "## Host", "", *(f"- {k}: {v}" for k, v in host.items()), ""]
    return "\n".join(parts)


def render_html(run: dict[str, Any], figures: dict[str, Any], charts: list[Path]) -> str:
    def table(head: list[str], rows: list[list[str]]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
        )
        return f"<table><tr>{th}</tr>{body}</table>"

    spec = run["spec"]
    head, rows = summary_table(figures)
    images = "".join(
        f'<img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}">' for p in charts
    )
    steps = "".join(
        f"<h2>Steps: {html.escape(LABELS.get(r['path'], r['path']))}</h2>"
        + table(list(STEP_KEYS), _step_rows(r))
        for r in run["ramps"]
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Scale benchmark {html.escape(spec["run_id"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:auto}}td,th{{padding:2px 8px;
border-bottom:1px solid #ddd;text-align:right}}img{{max-width:49%}}</style></head><body>
<h1>Scale benchmark {html.escape(spec["run_id"])}</h1>
<p>Status <b>{html.escape(run["status"])}</b>; <code>{html.escape(spec["image"])}</code> on
<code>{html.escape(spec["plan"])}</code>, disk layout <code>{html.escape(spec["disk_layout"])}
</code>. API p50 over raw at the top: {_f(figures.get("api_vs_raw_p50"), "{:.2f}x")}.</p>
{table(head, rows)}
<h2>At the top, and after deleting</h2>
{table(["ramp", "checks", "deleted", "left behind"], _end_rows(run))}
{images}{steps}
<p>Raw data: <a href="{RAW_NAME}">{RAW_NAME}</a></p></body></html>
"""


def render_charts(run: dict[str, Any], directory: Path) -> list[Path]:
    """One PNG per figure that any ramp measured: its value after each batch against N."""
    made = []
    for key, label, unit in FIGURES:
        series = [
            (r["path"], [(s["n"], s[key]) for s in r["steps"] if s.get(key) is not None])
            for r in run["ramps"]
        ]
        if not any(points for _, points in series):
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for path, points in series:
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", label=LABELS.get(path, path))
        ax.set_xlabel("servers alive (N)")
        ax.set_ylabel(f"{label} ({unit})" if unit else label)
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        target = directory / f"{key}_vs_n.png"
        fig.savefig(target, dpi=100)
        plt.close(fig)
        made.append(target)
    return made


def write_reports(run: dict[str, Any], directory: Path) -> dict[str, Path]:
    """Write results.json, summary.md, report.html and the charts; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    figures = analyse(run)
    raw = directory / RAW_NAME
    raw.write_text(json.dumps({**run, "figures": figures}, indent=1, default=str))
    charts = render_charts(run, directory)
    markdown = directory / "summary.md"
    markdown.write_text(render_markdown(run, figures))
    page = directory / "report.html"
    page.write_text(render_html(run, figures, charts))
    return {"json": raw, "markdown": markdown, "html": page, **{p.stem: p for p in charts}}


def headline(run: dict[str, Any]) -> dict[str, Any]:
    """The few figures stored in SQLite for `bench list`."""
    figures = analyse(run)
    keep = ("n", "failed", "last_vs_first", "create_p50_s_top", "mib_per_server", "list_p99_ms_top")
    summary = {
        "ramps": {p: {k: f[k] for k in keep} for p, f in figures["ramps"].items()},
        "api_vs_raw_p50": figures["api_vs_raw_p50"],
    }
    if run.get("host", {}).get("capacity_prediction"):
        summary["capacity_prediction"] = run["host"]["capacity_prediction"]
    return summary
