"""The capacity report as HTML with a PNG chart: used vs sellable per resource."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from containervps.services.capacity.planner import CapacityReport

__all__ = ["write_capacity_report"]


def _chart(report: CapacityReport, path: Path) -> None:
    known = [r for r in report.resources if r.sellable]
    names = [r.name for r in known]
    shares = [100 * r.used / (r.sellable or 1) for r in known]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(known) + 1.5))
    ax.barh(names, [100] * len(known), color="#e8e8e8", label="sellable")
    ax.barh(
        names,
        shares,
        color=["tab:blue" if r.enforced else "tab:orange" for r in known],
        label="used",
    )
    for y, (r, share) in enumerate(zip(known, shares, strict=True)):
        ax.text(
            min(share, 100) + 1,
            y,
            f"{r.used} / {r.sellable} {r.unit}".strip(),
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, 130)
    ax.set_xlabel("% of sellable (blue: admission enforces it; orange: measured, reported)")
    ax.invert_yaxis()
    ax.set_title("Host capacity: used vs sellable")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_capacity_report(report: CapacityReport, directory: Path) -> Path:
    """Write capacity.png and capacity.html into ``directory``; the HTML's path."""
    directory.mkdir(parents=True, exist_ok=True)
    _chart(report, directory / "capacity.png")
    rows = "".join(
        f"<tr><td>{html.escape(r.name)}</td><td>{r.used}</td><td>{r.sellable}</td>"
        f"<td>{r.free}</td><td>{'yes' if r.enforced else 'reported'}</td>"
        f"<td>{html.escape(r.basis)}</td></tr>"
        for r in report.resources
    )
    fits = "".join(
        f"<tr><td>{html.escape(p.plan)}</td><td>{p.fits}</td>"
        f"<td>{html.escape(p.binding or '-')}</td></tr>"
        for p in report.plans
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Host capacity</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:left}}</style>
</head><body><h1>Host capacity</h1><img src="capacity.png" alt="used vs sellable">
<h2>More servers that fit, per plan</h2>
<table><tr><th>plan</th><th>more that fit</th><th>binding resource</th></tr>{fits}</table>
<h2>Resources</h2><table><tr><th>resource</th><th>used</th><th>sellable</th><th>free</th>
<th>admission</th><th>basis</th></tr>{rows}</table></body></html>"""
    out = directory / "capacity.html"
    out.write_text(page)
    return out
