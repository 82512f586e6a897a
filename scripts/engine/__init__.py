"""The Pulumi CLI and Kubernetes provider, built from source and cached.

``ensure_built()`` builds what the cache lacks; ``bindir()`` is one directory
holding ``pulumi`` and ``pulumi-resource-kubernetes``: with it first on ``PATH``,
the Automation API drives the ``local`` stack against any kubeconfig. The command
line is ``python -m scripts.engine build|bindir|versions``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from scripts import gobuild
from scripts.gobuild import BuildError, Log, cache_root

from .components import COMPONENTS, KUBERNETES_PROVIDER, PULUMI

__all__ = ["COMPONENTS", "KUBERNETES_PROVIDER", "PULUMI", "BuildError", "bindir", "ensure_built"]


def ensure_built(*, log: Log = print, force: bool = False) -> dict[str, dict[str, float]]:
    """Build what the cache lacks; returns the timings of what was built."""
    return gobuild.ensure_built(COMPONENTS, log=log, force=force)


def _link_dir(components: Iterable[gobuild.Component]) -> Path:
    label = "+".join(f"{c.name}-{c.version}" for c in components)
    return cache_root() / "bin" / f"engine-{label}"


def bindir() -> Path:
    """One directory with both binaries (symlinks into their cache directories).

    Raises BuildError when they are not built: run ``ensure_built()`` first.
    """
    binaries = {
        name: gobuild.binary(comp, name, "python -m scripts.engine build")
        for comp in COMPONENTS
        for name, _ in comp.binaries
    }
    target = _link_dir(COMPONENTS)
    target.mkdir(parents=True, exist_ok=True)
    for name, path in binaries.items():
        link = target / name
        if not (link.is_symlink() and link.resolve() == path.resolve()):
            tmp = target / f".{name}.link"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(path)
            os.replace(tmp, link)
    return target
