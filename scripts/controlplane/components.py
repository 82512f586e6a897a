"""Pinned components and where their binaries are cached.

The versions live in one place: the wrapper Go modules under ``build/``. Each
binary directory is keyed by the module version, so bumping a version in a
go.mod builds into a fresh directory and older builds stay usable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_MODULES = HERE / "build"
KWOK_STAGES = HERE / "kwok" / "stages.yaml"


def cache_root() -> Path:
    """``$PINGPOD_CACHE_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/pingpod``."""
    explicit = os.environ.get("PINGPOD_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "pingpod"


def module_version(go_mod: Path, module: str) -> str:
    """The version ``go_mod`` requires of ``module`` (a require line, in or out of a block)."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.MULTILINE)
    match = pattern.search(go_mod.read_text())
    if match is None:
        raise LookupError(f"{go_mod} does not require {module}")
    return match.group(1)


@dataclass(frozen=True)
class Component:
    """A wrapper module and the binaries built from it."""

    name: str
    module: str
    binaries: tuple[tuple[str, str], ...]  # (binary name, Go main package)

    @property
    def module_dir(self) -> Path:
        return BUILD_MODULES / self.name

    @property
    def version(self) -> str:
        return module_version(self.module_dir / "go.mod", self.module)

    @property
    def bin_dir(self) -> Path:
        return cache_root() / "bin" / f"{self.name}-{self.version}"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name


ETCD = Component(
    name="etcd",
    module="go.etcd.io/etcd/server/v3",
    binaries=(
        ("etcd", "go.etcd.io/etcd/server/v3"),
        ("etcdctl", "go.etcd.io/etcd/etcdctl/v3"),
    ),
)
KWOK = Component(
    name="kwok",
    module="sigs.k8s.io/kwok",
    binaries=(("kwok", "sigs.k8s.io/kwok/cmd/kwok"),),
)
K8S = Component(
    name="k8s",
    module="k8s.io/kubernetes",
    binaries=tuple(
        (cmd, f"k8s.io/kubernetes/cmd/{cmd}")
        for cmd in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
    ),
)
# Quick ones first, so a broken toolchain or proxy shows up before the long k8s build.
COMPONENTS: tuple[Component, ...] = (ETCD, KWOK, K8S)


def versions() -> dict[str, str]:
    return {c.name: c.version for c in COMPONENTS}
