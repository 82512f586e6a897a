"""What the tests read of a stack: the engine's events and the recorded state.

The stacks themselves come from ``scripts.engine.stack.Engine``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pulumi import automation as auto


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
