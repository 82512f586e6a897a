"""Stacks of the project's own program under the real engine, isolated per test module.

Each stack gets a work directory holding copies of ``Pulumi.yaml`` and
``Pulumi.local.yaml`` (so the project's config schema is in force and the
committed files are never edited), a file backend and a Pulumi home of its own.
The program is the repository's ``__main__.py``, run in process as an
Automation API inline program: the Python SDK serves the language runtime and
the CLI connects to it, so no ``pulumi-language-python`` is needed.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from scripts.engine import KUBERNETES_PROVIDER

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.local.yaml")
STACK = "local"
PASSPHRASE = "engine-tests-only"


def run_program() -> None:
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


@dataclass
class Events:
    """What the engine reported during one operation, through ``on_event``."""

    raw: list[auto.EngineEvent] = field(default_factory=list)

    def __call__(self, event: auto.EngineEvent) -> None:
        self.raw.append(event)

    def steps(self) -> list[auto.StepEventMetadata]:
        return [e.resource_pre_event.metadata for e in self.raw if e.resource_pre_event]

    def ops(self) -> dict[str, auto.OpType]:
        """Operation per resource URN."""
        return {step.urn: step.op for step in self.steps()}

    def types(self, op: auto.OpType) -> set[str]:
        return {step.type for step in self.steps() if step.op == op}

    def warnings(self) -> list[str]:
        return [
            e.diagnostic_event.message
            for e in self.raw
            if e.diagnostic_event and e.diagnostic_event.severity in ("warning", "error")
        ]


@dataclass
class Engine:
    """Where the stacks of one test module live."""

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
            [
                "pulumi",
                "plugin",
                "install",
                "resource",
                "kubernetes",
                version,
                "--file",
                str(binary),
            ],
            env={**os.environ, **self.env("plugins")},
            check=True,
            capture_output=True,
        )

    def stack(self, label: str) -> auto.Stack:
        """A new ``local`` stack in a work directory and backend of its own."""
        work_dir = self.root / label
        work_dir.mkdir()
        for name in PROJECT_FILES:
            shutil.copyfile(ROOT / name, work_dir / name)
        (self.root / f"state-{label}").mkdir()
        workspace = auto.LocalWorkspace(
            work_dir=str(work_dir),
            program=run_program,
            env_vars=self.env(label),
            secrets_provider="passphrase",
        )
        return auto.Stack.create(STACK, workspace)


def resources(stack: auto.Stack) -> list[dict[str, Any]]:
    """The resources the engine recorded in the stack's state."""
    deployment = stack.export_stack().deployment or {}
    return list(deployment.get("resources") or [])


def kubernetes_objects(stack: auto.Stack) -> list[dict[str, Any]]:
    """The outputs of every Kubernetes object in the stack's state (not providers)."""
    return [
        res["outputs"]
        for res in resources(stack)
        if res["type"].startswith("kubernetes:") and "apiVersion" in res.get("outputs", {})
    ]
