"""Build the control-plane binaries from source into the version-keyed cache
(the mechanics are in ``scripts.gobuild``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from scripts import gobuild
from scripts.gobuild import BuildError, Component, Log

from .components import COMPONENTS

__all__ = ["BuildError", "binary", "ensure_built"]


def ensure_built(
    components: Iterable[Component] = COMPONENTS, *, log: Log = print, force: bool = False
) -> dict[str, dict[str, float]]:
    """Build what the cache lacks; returns the timings of what was built."""
    return gobuild.ensure_built(components, log=log, force=force)


def binary(comp: Component, name: str) -> Path:
    """Path to a cached binary, or BuildError telling how to build it."""
    return gobuild.binary(comp, name, "python -m scripts.controlplane build")
