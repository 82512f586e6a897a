"""``ensure_images()``: the echo, provisioner and pause images (and metrics-server's, when
asked for), built only when an input changed.

An image's input hash covers its Dockerfile, ``.dockerignore``, every context
file the Dockerfile copies (after ``.dockerignore``), the stand-in bases'
recipes and this module's format. Its tag is the first 12 hex digits of that
hash (plus ``:dev``), and its stamp records the hash, the image ID and the
exported archive. A warm run hashes the inputs, reads the stamps, asks storage
whether the images are still there, and builds nothing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scripts.gobuild import Log

from . import bases, builder, context, metrics_server, pause
from .cache import (
    Hasher,
    ImageBuildError,
    build_lock,
    drop_stamp,
    read_stamp,
    state_dir,
    write_stamp,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = "docker.io/pingpod"  # explicit docker.io: buildah would make it localhost/...
IMAGES_FORMAT = 1  # bump when the build or export changes in a way the inputs do not show
APP_IMAGES = ("echo", "provisioner")
ALL_IMAGES = (*APP_IMAGES, "pause")
# Built only when named: an add-on of the test control plane (scripts.controlplane.metrics_server).
ADDON_IMAGES = ("metrics-server",)


@dataclass(frozen=True)
class Image:
    """A built image: ``archive`` is a docker-archive for ``ctr images import``."""

    name: str  # "echo", "provisioner", "pause" or "metrics-server"
    ref: str  # full reference, e.g. docker.io/pingpod/echo:<12 hex>
    archive: Path
    id: str  # image ID: sha256 of the image config (what CRI reports as the image ID)
    input_hash: str


@dataclass(frozen=True)
class _Plan:
    name: str
    input_hash: str
    files: tuple[str, ...]  # context files the Dockerfile copies (app images only)

    @property
    def ref(self) -> str:
        if self.name == "pause":
            return pause.PAUSE_IMAGE
        return f"{REPOSITORY}/{self.name}:{self.input_hash[:12]}"

    @property
    def archive(self) -> Path:
        return state_dir("archives") / f"{self.name}-{self.input_hash[:12]}.tar"


def _dockerfile(name: str) -> Path:
    return Path("services") / name / "Dockerfile"


def _app_hash(dockerfile: bytes, ignore: bytes, root: Path, files: tuple[str, ...]) -> str:
    """``root`` is the repository, or a staged copy holding the same relative paths."""
    return (
        Hasher("image")
        .text("format", str(IMAGES_FORMAT))
        .text("bases", bases.recipes(bases.used_by(dockerfile.decode())))
        .data("dockerfile", dockerfile)
        .data("dockerignore", ignore)
        .files(root, files)
        .hexdigest()
    )


def _plan(name: str) -> _Plan:
    if name == "pause":
        return _Plan(name, pause.input_hash(), ())
    if name == "metrics-server":
        return _Plan(name, metrics_server.input_hash(), ())
    dockerfile = (REPO_ROOT / _dockerfile(name)).read_bytes()
    ignore = (REPO_ROOT / ".dockerignore").read_bytes()
    files = tuple(context.copied_files(REPO_ROOT, dockerfile.decode(), ignore.decode()))
    return _Plan(name, _app_hash(dockerfile, ignore, REPO_ROOT, files), files)


def _cached(plan: _Plan, *, check_storage: bool) -> Image | None:
    stamp = read_stamp(plan.name)
    if stamp.get("input_hash") != plan.input_hash or not plan.archive.is_file():
        return None
    if check_storage and builder.image_id(plan.ref) != stamp.get("id"):
        return None
    return Image(plan.name, plan.ref, plan.archive, stamp["id"], plan.input_hash)


def _build_app(plan: _Plan, log_file: Path, log: Log) -> tuple[_Plan, str]:
    """Build from a staged copy of the context; the plan is re-made from that copy."""
    work = state_dir("contexts") / plan.name
    staged = work / "context"
    context.stage(REPO_ROOT, [*plan.files, ".dockerignore"], staged)
    # The Dockerfile outside the context, as `docker build -f` reads it.
    shutil.copy2(REPO_ROOT / _dockerfile(plan.name), work / "Dockerfile")
    dockerfile, ignore = (work / "Dockerfile").read_bytes(), (staged / ".dockerignore").read_bytes()
    final = _Plan(plan.name, _app_hash(dockerfile, ignore, staged, plan.files), plan.files)
    bases.ensure_bases(bases.used_by(dockerfile.decode()), log)
    log(f"[{plan.name}] building {_dockerfile(plan.name)} (log: {log_file})")
    try:
        image_id = builder.bud(
            context=staged,
            containerfile=work / "Dockerfile",
            tags=[final.ref, f"{REPOSITORY}/{plan.name}:dev"],
            what=f"buildah bud {_dockerfile(plan.name)}",
            log_file=log_file,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final, image_id


def _build(plan: _Plan, log: Log) -> Image:
    log_file = state_dir("logs") / f"{plan.name}.log"
    log_file.write_text("")
    drop_stamp(plan.name)
    start = time.monotonic()
    if plan.name == "pause":
        image_id = pause.build(log_file, log)
    elif plan.name == "metrics-server":
        image_id = metrics_server.build(plan.ref, log_file, log)
    else:
        plan, image_id = _build_app(plan, log_file, log)
        log(f"[{plan.name}] built {plan.ref} in {time.monotonic() - start:.1f}s")
    exported = time.monotonic()
    builder.export_archive(
        plan.ref, plan.archive, what=f"export {plan.ref} (docker-archive)", log_file=log_file
    )
    for old in state_dir("archives").glob(f"{plan.name}-*.tar"):
        if old != plan.archive:
            old.unlink()
    if plan.name != "pause":
        repo = f"{REPOSITORY}/{plan.name}"
        old_tags = [r for r in builder.tagged(repo) if r not in (plan.ref, f"{repo}:dev")]
        builder.untag(old_tags, log_file)
    size = plan.archive.stat().st_size >> 20
    log(f"[{plan.name}] archive {plan.archive} ({size} MB) in {time.monotonic() - exported:.1f}s")
    write_stamp(
        plan.name,
        {
            "input_hash": plan.input_hash,
            "ref": plan.ref,
            "id": image_id,
            "archive": str(plan.archive),
            "seconds": f"{time.monotonic() - start:.1f}",
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    return Image(plan.name, plan.ref, plan.archive, image_id, plan.input_hash)


def ensure_images(
    log: Log = print, *, names: Iterable[str] = ALL_IMAGES, force: bool = False
) -> dict[str, Image]:
    """Build what is missing or out of date among ``names`` ("echo", "provisioner", "pause",
    "metrics-server")."""
    wanted = _known(names)
    images: dict[str, Image] = {}
    with build_lock():
        for name in wanted:
            plan = _plan(name)
            image = None if force else _cached(plan, check_storage=True)
            if image is None:
                try:
                    image = _build(plan, log)
                except OSError as exc:
                    raise ImageBuildError(f"building the {name} image: {exc}") from exc
            else:
                log(f"[{name}] cached: {image.ref}")
            images[name] = image
    return images


def built_images(names: Iterable[str] = ALL_IMAGES) -> dict[str, Image]:
    """The images as built for the current inputs, without building; ImageBuildError if any
    is missing or out of date."""
    images: dict[str, Image] = {}
    for name in _known(names):
        image = _cached(_plan(name), check_storage=False)
        if image is None:
            raise ImageBuildError(
                f"the {name} image is not built for the current inputs: "
                "run `python -m scripts.images build`"
            )
        images[name] = image
    return images


def _known(names: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(names)
    known = (*ALL_IMAGES, *ADDON_IMAGES)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ValueError(f"unknown images {unknown}: choose from {known}")
    return wanted
