"""Where the image build keeps its state, the build lock, input hashes and stamps.

Everything lives under ``<cache_root>/images`` (``scripts.gobuild.cache_root``):
buildah's storage, exported archives, downloads, logs and one JSON stamp per
image. A stamp records the sha256 of every input of its image; a warm run
compares hashes and reads stamps, and runs no builder at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from scripts.gobuild import BuildError, cache_root, file_lock


class ImageBuildError(BuildError):
    """A build step failed; the message names the step and the full log."""


def images_root() -> Path:
    return cache_root() / "images"


def state_dir(name: str) -> Path:
    """A subdirectory of the images cache (created): storage, run, archives, logs..."""
    path = images_root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_path(name: str) -> Path:
    return state_dir("logs") / f"{name}.log"


def build_lock() -> contextlib.AbstractContextManager[None]:
    """Serialise builds between concurrent runs (CLI and pytest, two test sessions)."""
    return file_lock(state_dir(".") / ".lock")


class Hasher:
    """sha256 over labelled parts, so that moving bytes between parts changes the hash."""

    def __init__(self, kind: str) -> None:
        self._h = hashlib.sha256(kind.encode())

    def text(self, label: str, value: str) -> Hasher:
        return self.data(label, value.encode())

    def data(self, label: str, value: bytes) -> Hasher:
        self._h.update(f"\0{label}\0{len(value)}\0".encode())
        self._h.update(value)
        return self

    def files(self, root: Path, paths: Iterable[str]) -> Hasher:
        """Each file's path (relative to root), executable bit and content."""
        for rel in sorted(paths):
            path = root / rel
            mode = "x" if os.stat(path).st_mode & 0o111 else "-"
            self.data(f"file {mode} {rel}", path.read_bytes())
        return self

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def sha512_file(path: Path) -> bytes:
    digest = hashlib.sha512()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def _stamp_path(name: str) -> Path:
    return state_dir("stamps") / f"{name}.json"


def read_stamp(name: str) -> dict[str, str]:
    """The stamp of the last successful build of ``name``, or {} when there is none."""
    try:
        raw = json.loads(_stamp_path(name).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def write_stamp(name: str, record: dict[str, str]) -> None:
    path = _stamp_path(name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a stamp


def drop_stamp(name: str) -> None:
    _stamp_path(name).unlink(missing_ok=True)
