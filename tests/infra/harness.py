"""Run the real Pulumi program under mocks and record every resource it declares.

``run_stack("prod")`` loads ``Pulumi.yaml``'s defaults and ``Pulumi.prod.yaml``
the way the CLI would, runs ``__main__.py`` against a mock engine, and returns
every resource (type, name, inputs, parent) plus the stack outputs. Nothing
leaves the process: AWS, EKS and the registry are answered by ``StackMocks``
(``tests/infra/mocks.py``) with plausible values (ids, ARNs, subnet ids, a
kubeconfig, an image digest).

Each run happens in a fresh ``contextvars.Context``: the Pulumi runtime keeps
its settings, config and root stack in context variables, so runs do not leak
into each other. The program sees a fixed date (``TODAY``) and an AWS CLI on
PATH unless a test passes another ``Host``.
"""

from __future__ import annotations

import contextvars
import json
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.host import Host, use_host
from tests.infra.mocks import ACCOUNT, CALLER_ARN, DEPLOY_ROLE, REGION, Recorded, StackMocks

__all__ = [
    "ACCOUNT",
    "CALLER_ARN",
    "DEPLOY_ROLE",
    "REGION",
    "REPO",
    "TODAY",
    "Recorded",
    "StackMocks",
    "StackRun",
    "fake_host",
    "run_function",
    "run_program",
    "run_stack",
    "stack_config",
]

REPO = Path(__file__).resolve().parents[2]
PROJECT = "pingpod"
TODAY = date(2026, 11, 23)


def fake_host(*, aws_cli: bool = True, today: date = TODAY, aws_version: str = "2.27.0") -> Host:
    """A machine on ``today``, with or without the AWS CLI (of ``aws_version``) on PATH."""
    return Host(
        today=lambda: today,
        which=lambda name: f"/usr/local/bin/{name}" if aws_cli or name != "aws" else None,
        version=lambda path: (
            f"aws-cli/{aws_version} Python/3.13.4 Linux/6.8.0 exe/x86_64.debian.12"
        ),
    )


@dataclass
class StackRun:
    """What one program run declared."""

    stack: str
    resources: list[Recorded]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    calls: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> Recorded:
        found = self.of_type(type_)
        if len(found) != 1:
            raise AssertionError(f"expected one {type_}, found {[r.name for r in found]}")
        return found[0]

    def named(self, name: str) -> Recorded:
        for r in self.resources:
            if r.name == name:
                return r
        raise AssertionError(f"no resource named {name}")

    def kubernetes(self) -> list[Recorded]:
        return [
            r
            for r in self.resources
            if r.type.startswith("kubernetes:") and not r.type.startswith("kubernetes:helm")
        ]


class _Monitor(pulumi_mocks.MockMonitor):
    """The mock engine, without resource references.

    With them, a resource passed as an input (``ManagedNodeGroup(cluster=...)``)
    is rehydrated inside the mock monitor's thread, whose event loop never runs,
    and the program hangs. Without them the input arrives as the URN, which is
    all a test looks at.
    """

    def GetDeploymentInfo(self, request: Any) -> Any:
        info = super().GetDeploymentInfo(request)
        keep = [
            f
            for f in info.supportedFeatures
            if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES
        ]
        return resource_pb2.DeploymentInfo(supportedFeatures=keep)

    def __init__(self, mocks: StackMocks) -> None:
        super().__init__(mocks)
        self.dependencies: dict[tuple[str, str], tuple[str, ...]] = {}
        self.property_dependencies: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}
        self.ignore_changes: dict[tuple[str, str], tuple[str, ...]] = {}

    def RegisterResource(self, request: Any) -> Any:
        key = (request.type, request.name)
        self.dependencies[key] = tuple(request.dependencies)
        self.property_dependencies[key] = {
            prop: tuple(deps.urns) for prop, deps in request.propertyDependencies.items()
        }
        self.ignore_changes[key] = tuple(request.ignoreChanges)
        return super().RegisterResource(request)

    def SupportsFeature(self, request: Any) -> Any:
        if request.id == "resourceReferences":
            return type("SupportsFeatureResponse", (object,), {"hasSupport": False})
        return super().SupportsFeature(request)


def stack_config(stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The config the CLI would hand the program: project defaults, then the stack file."""
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    values: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(spec, dict) and "default" in spec:
            values[full] = spec["default"]
        elif isinstance(spec, dict) and "value" in spec:
            values[full] = spec["value"]
    stack_file = REPO / f"Pulumi.{stack}.yaml"
    stack_values = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    values |= dict(stack_values)
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if value is None:
            values.pop(full, None)
        else:
            values[full] = value
    return {k: _wire(v) for k, v in values.items()}


def _wire(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def run_program(
    stack: str,
    config: Mapping[str, str],
    mocks: StackMocks | None = None,
    host: Host | None = None,
) -> StackRun:
    """Run ``__main__.py`` under mocks with exactly ``config``; raise what it raises.

    Pass ``mocks`` to look at what was declared even when the program fails,
    and ``host`` for another date or a machine without the AWS CLI.
    """

    def program() -> None:
        runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")

    return run_function(program, stack=stack, config=config, mocks=mocks, host=host)


def run_function(
    program: Callable[[], None],
    *,
    stack: str = "test",
    config: Mapping[str, str] | None = None,
    mocks: StackMocks | None = None,
    host: Host | None = None,
) -> StackRun:
    """Run any program function (one component, say) under the same mocks."""
    mocks = mocks if mocks is not None else StackMocks(stack)
    host = host if host is not None else fake_host()
    return contextvars.Context().run(_run, mocks, dict(config or {}), program, host)


def run_stack(
    stack: str, overrides: Mapping[str, Any] | None = None, mocks: StackMocks | None = None
) -> StackRun:
    return run_program(stack, stack_config(stack, overrides), mocks=mocks)


def _run(
    mocks: StackMocks, config: dict[str, str], program: Callable[[], None], host: Host
) -> StackRun:
    stack = mocks.stack
    use_host(host)  # this run's context only
    pulumi.runtime.set_all_config(config)
    monitor = _Monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

    _sync_await(run_pulumi_func(program))

    root = pulumi.runtime.get_root_resource()
    raw_outputs: dict[str, Any] = dict(getattr(root, "outputs", {}) or {})
    outputs: dict[str, Any] = {}
    secret: set[str] = set()
    for key, value in raw_outputs.items():
        out = pulumi.Output.from_input(value)
        outputs[key] = _sync_await(out.future())
        if _sync_await(out.is_secret()):
            secret.add(key)

    parents = _parent_types(monitor)
    resources = [
        Recorded(
            r.type,
            r.name,
            r.inputs,
            r.custom,
            r.provider,
            parent_type=parents.get((r.type, r.name)),
            dependencies=monitor.dependencies.get((r.type, r.name), ()),
            property_dependencies=monitor.property_dependencies.get((r.type, r.name), {}),
            ignore_changes=monitor.ignore_changes.get((r.type, r.name), ()),
        )
        for r in mocks.resources
    ]
    return StackRun(stack, resources, outputs, secret, list(mocks.calls))


def _parent_types(monitor: pulumi_mocks.MockMonitor) -> dict[tuple[str, str], str | None]:
    """(type, name) -> the type of its parent, read from the URNs' type chains."""
    result: dict[tuple[str, str], str | None] = {}
    for urn in monitor.resources:
        _, _, qualified, name = urn.split("::", 3)
        chain = qualified.split("$")
        result[(chain[-1], name)] = chain[-2] if len(chain) > 1 else None
    return result
