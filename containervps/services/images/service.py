"""Image use cases: build (cached), import into LXD with alias and properties, list."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Image
from containervps.errors import InvalidInput
from containervps.lxd import Lxd
from containervps.services.images import rootfs
from containervps.services.images.recipes import ImageRecipe, get_recipe, recipes
from containervps.shell import run

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    name: str
    fingerprint: str
    cached: bool  # True when the build artifact was reused
    seconds: float
    size_bytes: int


@dataclass(frozen=True)
class ImageListing:
    name: str
    os: str
    release: str
    description: str
    source: str
    fingerprint: str | None  # None: not built/imported yet
    size_bytes: int
    in_lxd: bool


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class ImageService:
    """Builds images offline, caches the artifacts, imports them into LXD."""

    def __init__(self, settings: Settings, lxd: Lxd) -> None:
        self.settings = settings
        self.lxd = lxd

    def artifact_dir(self, recipe: ImageRecipe) -> Path:
        """Cache directory of a recipe's build (changes with the recipe)."""
        return self.settings.image_cache_dir / recipe.name / recipe.cache_key()

    def rootfs_dir(self, name: str, *, progress: Progress | None = None) -> Path:
        """The built root filesystem of an offline image (built now if needed)."""
        recipe = get_recipe(self.settings, name)
        self._ensure_artifact(recipe, progress=progress or (lambda _: None))
        return self.artifact_dir(recipe) / "rootfs"

    def build(
        self, name: str, *, force: bool = False, progress: Progress | None = None
    ) -> BuildResult:
        """Build (or reuse) image ``name``, import it into LXD and point the alias at it."""
        say = progress or (lambda _: None)
        recipe = get_recipe(self.settings, name)
        started = time.monotonic()
        if recipe.kind == "remote":
            say(f"copying {recipe.remote_alias} from {recipe.remote_server}")
            fingerprint = self.lxd.images.copy_from_simplestreams(
                server=recipe.remote_server, alias=recipe.remote_alias
            )
            self.lxd.images.set_properties(fingerprint, recipe.properties)
            cached = False
        else:
            if force:
                shutil.rmtree(self.artifact_dir(recipe), ignore_errors=True)
            cached = self._ensure_artifact(recipe, progress=say)
            fingerprint = self._import(recipe, say)
        previous = self.lxd.images.by_alias(name)
        self.lxd.images.set_alias(
            alias=name, fingerprint=fingerprint, description=recipe.description
        )
        if previous and previous.fingerprint != fingerprint:
            # The superseded build; instances made from it keep their own copy-on-write volume.
            self.lxd.images.delete(previous.fingerprint)
        info = self.lxd.images.get(fingerprint)
        result = BuildResult(
            name=name,
            fingerprint=fingerprint,
            cached=cached,
            seconds=time.monotonic() - started,
            size_bytes=info.size_bytes if info else 0,
        )
        self._record(recipe, result)
        log.info(
            "image ready",
            extra={
                "image": name,
                "fingerprint": fingerprint[:12],
                "cached": cached,
                "seconds": round(result.seconds, 1),
            },
        )
        return result

    def import_cached(self, name: str, *, progress: Progress | None = None) -> str:
        """Import an offline image's (cached) build into this LXD under its alias without
        recording it in the catalogue (e.g. into the development cluster); its fingerprint."""
        say = progress or (lambda _: None)
        recipe = get_recipe(self.settings, name)
        if recipe.kind == "remote":
            raise InvalidInput(f"image {name!r} is not built offline", details={"image": name})
        self._ensure_artifact(recipe, progress=say)
        fingerprint = self._import(recipe, say)
        self.lxd.images.set_alias(
            alias=name, fingerprint=fingerprint, description=recipe.description
        )
        return fingerprint

    def list(self) -> list[ImageListing]:
        """Every image in the catalogue with its build and LXD state."""
        with session_scope(self.settings) as session:
            rows = {row.name: row for row in session.exec(select(Image)).all()}
        in_lxd = {fp.fingerprint for fp in self.lxd.images.list()}
        listing = []
        for recipe in recipes(self.settings).values():
            row = rows.get(recipe.name)
            listing.append(
                ImageListing(
                    name=recipe.name,
                    os=recipe.os,
                    release=recipe.release,
                    description=recipe.description,
                    source=recipe.kind,
                    fingerprint=row.fingerprint if row else None,
                    size_bytes=row.size_bytes if row else 0,
                    in_lxd=bool(row and row.fingerprint in in_lxd),
                )
            )
        return listing

    def _ensure_artifact(self, recipe: ImageRecipe, *, progress: Progress) -> bool:
        """Build the rootfs and tarball unless cached; return True when cached."""
        final = self.artifact_dir(recipe)
        final.parent.mkdir(parents=True, exist_ok=True)
        # One build per image at a time, also across processes (CLI, API, tests).
        with (final.parent / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (final / "image.tar").exists():
                return True
            self._build_artifact(recipe, final, progress=progress)
            for stale in final.parent.iterdir():
                if stale.is_dir() and stale != final and not stale.name.startswith("."):
                    shutil.rmtree(stale, ignore_errors=True)
        return False

    def _build_artifact(self, recipe: ImageRecipe, final: Path, *, progress: Progress) -> None:
        # Build in a scratch directory and rename: an interrupted build leaves no artifact.
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
        try:
            started = time.monotonic()
            root = work / "rootfs"
            root.mkdir()
            if recipe.kind == "busybox":
                progress("assembling busybox root filesystem")
                rootfs.build_busybox(root)
            else:
                progress(f"debootstrap {recipe.suite} (about a minute)")
                rootfs.build_debian(
                    root, recipe, package_cache=self.settings.image_cache_dir / "debs"
                )
            (work / "metadata.yaml").write_text(
                rootfs.lxd_metadata(recipe, created=int(time.time()))
            )
            rootfs.write_templates(work / "templates")
            progress("packing image tarball")
            run(
                [
                    "tar",
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=*",
                    "-C",
                    str(work),
                    "-cf",
                    str(work / "image.tar"),
                    "metadata.yaml",
                    "templates",
                    "rootfs",
                ],
                what="pack image tarball",
            )
            (work / "build.json").write_text(
                json.dumps(
                    {"recipe": recipe.cache_key(), "seconds": round(time.monotonic() - started, 1)}
                )
            )
            shutil.rmtree(final, ignore_errors=True)
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _import(self, recipe: ImageRecipe, say: Progress) -> str:
        tarball = self.artifact_dir(recipe) / "image.tar"
        fingerprint = _sha256(tarball)
        if self.lxd.images.get(fingerprint) is None:
            say("importing into LXD")
            fingerprint = self.lxd.images.import_tarball(tarball, properties=recipe.properties)
        return fingerprint

    def _record(self, recipe: ImageRecipe, result: BuildResult) -> None:
        with session_scope(self.settings) as session:
            row = session.get(Image, recipe.name) or Image(
                name=recipe.name,
                os=recipe.os,
                release=recipe.release,
                description=recipe.description,
                source=recipe.kind,
                fingerprint="",
                size_bytes=0,
                build_seconds=0.0,
                built_at=datetime.now(UTC),
            )
            row.fingerprint = result.fingerprint
            row.size_bytes = result.size_bytes
            row.description = recipe.description
            if not result.cached:
                row.build_seconds = result.seconds
                row.built_at = datetime.now(UTC)
            session.add(row)
