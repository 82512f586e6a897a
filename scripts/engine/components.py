"""The Pulumi engine's binaries built here: the CLI and the Kubernetes provider.

The Python language host (``pulumi-language-python``) is not among them: it has
no module version the proxy serves. The tests drive the engine through the
Automation API's inline programs instead, whose language runtime is served by
the Python SDK in-process (the CLI's ``--client`` flag).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts.gobuild import Component, Origin, run_go

BUILD_MODULES = Path(__file__).resolve().parent / "build"
PROVIDER_CMD = "cmd/pulumi-resource-kubernetes"


def _pulumi_version_flags(origin: Origin) -> list[str]:
    return [f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={origin.version}"]


def _provider_version_flags(origin: Origin) -> list[str]:
    version = origin.version.lstrip("v")
    return [f"-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={version}"]


def _generate_provider(origin: Origin, work_dir: Path, log_file: Path) -> None:
    """Copy the provider's main package out of the read-only module cache and run its
    generate step, which writes the versioned schema that ``main.go`` embeds."""
    target = work_dir / PROVIDER_CMD
    shutil.copytree(origin.dir / PROVIDER_CMD, target)
    for path in target.rglob("*"):
        path.chmod(0o644)
    target.chmod(0o755)
    run_go(
        ["run", "generate.go"],
        cwd=target,
        log_file=log_file,
        what=f"go run generate.go ({PROVIDER_CMD})",
        env={"VERSION": origin.version.lstrip("v")},
    )


PULUMI = Component(
    name="pulumi",
    module="github.com/pulumi/pulumi/pkg/v3",
    module_dir=BUILD_MODULES / "pulumi",
    binaries=(("pulumi", "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"),),
    ldflags=_pulumi_version_flags,
    # gocloud.dev's pseudo-version: the proxy serves its zip, but not its .info.
    download_all=False,
)
KUBERNETES_PROVIDER = Component(
    name="pulumi-resource-kubernetes",
    module="github.com/pulumi/pulumi-kubernetes/provider/v4",
    module_dir=BUILD_MODULES / "pulumi-kubernetes",
    binaries=(("pulumi-resource-kubernetes", f"./{PROVIDER_CMD}"),),
    ldflags=_provider_version_flags,
    prepare=_generate_provider,
    # The pseudo-version v4.0.0-20260115033456-f47bc2d6f199 is this release's commit.
    release="v4.25.0",
)
COMPONENTS: tuple[Component, ...] = (KUBERNETES_PROVIDER, PULUMI)
