"""`containervps image ...`: build and list OS images."""

from __future__ import annotations

import typer

from containervps.cli import common
from containervps.services.images.service import ImageService

app = typer.Typer(help="OS images offered to tenants.", no_args_is_help=True)


@app.command("build")
def build(
    names: list[str] = typer.Argument(..., help="Image names, e.g. busybox debian-12."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a cached build exists."),
    json_out: bool = common.JsonOption,
) -> None:
    """Build (or reuse) images and import them into LXD with an alias per name."""
    s = common.settings()
    service = ImageService(s, common.lxd())
    results = []
    for name in names:
        with common.console.status(f"{name}: starting") as status:

            def progress(message: str, image: str = name) -> None:
                status.update(f"{image}: {message}")

            results.append(service.build(name, force=force, progress=progress))
    if json_out:
        common.print_json(results)
        return
    common.print_table(
        "images",
        ["name", "fingerprint", "build", "seconds", "size MiB"],
        [
            (
                r.name,
                r.fingerprint[:12],
                "cached" if r.cached else "built",
                f"{r.seconds:.1f}",
                f"{r.size_bytes / 2**20:.1f}",
            )
            for r in results
        ],
    )


@app.command("list")
def list_images(json_out: bool = common.JsonOption) -> None:
    """Every image of the catalogue and whether it is ready in LXD."""
    listing = ImageService(common.settings(), common.lxd()).list()
    if json_out:
        common.print_json(listing)
        return
    common.print_table(
        "images",
        ["name", "os", "release", "source", "ready", "fingerprint", "size MiB", "description"],
        [
            (
                i.name,
                i.os,
                i.release,
                i.source,
                "yes" if i.in_lxd else "no",
                (i.fingerprint or "")[:12],
                f"{i.size_bytes / 2**20:.1f}",
                i.description,
            )
            for i in listing
        ],
    )
