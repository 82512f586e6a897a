"""The ``local`` stack of the project's own program, driven by the engine built here.

Each stack gets a work directory holding fresh copies of ``Pulumi.yaml`` and
``Pulumi.local.yaml`` (so the project's config schema is in force and the
committed files are never edited), a file backend and a Pulumi home of its own.
The program is the repository's ``__main__.py``, run in process as an
Automation API inline program: the Python SDK serves the language runtime and
the CLI connects to it (``--client``), so no ``pulumi-language-python`` is needed.
``pulumi`` must be on PATH (``bindir()``).
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pulumi import automation as auto

from .components import KUBERNETES_PROVIDER

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.local.yaml")
STACK = "local"
PASSPHRASE = "pingpod-local-engine"  # noqa: S105 (a throwaway file backend on this machine)


def run_program() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


@dataclass
class Engine:
    """Where the stacks live: ``<root>/<label>`` work directories, ``<root>/state-<label>``
    file backends and one Pulumi home with the provider installed."""

    root: Path
    bin_dir: Path
    kubeconfig: Path

    def env(self, label: str) -> dict[str, str]:
        return {
            "PULUMI_BACKEND_URL": (self.root / f"state-{label}").as_uri(),
            "PULUMI_HOME": str(self.root / "pulumi-home"),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            # No network: nothing may be looked up or downloaded.
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            # The provider comes from the plugin cache, installed at the version the
            # SDK asks for: a mismatch fails instead of using whatever is on PATH.
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            "KUBECONFIG": str(self.kubeconfig),
        }

    def install_provider(self) -> None:
        """Install the provider built here into this engine's plugin cache."""
        version = KUBERNETES_PROVIDER.version
        binary = self.bin_dir / "pulumi-resource-kubernetes"
        subprocess.run(
            ["pulumi", "plugin", "install", "resource", "kubernetes", version, "-f", str(binary)],
            env={**os.environ, **self.env("plugins")},
            check=True,
            capture_output=True,
        )

    def stack(self, label: str) -> auto.Stack:
        """The ``local`` stack in work directory and backend ``label`` (created if new)."""
        work_dir = self.root / label
        work_dir.mkdir(parents=True, exist_ok=True)
        for name in PROJECT_FILES:
            shutil.copyfile(ROOT / name, work_dir / name)
        (self.root / f"state-{label}").mkdir(exist_ok=True)
        workspace = auto.LocalWorkspace(
            work_dir=str(work_dir),
            program=run_program,
            env_vars=self.env(label),
            secrets_provider="passphrase",
        )
        return auto.Stack.create_or_select(STACK, workspace)
