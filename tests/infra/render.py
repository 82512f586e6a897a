"""The Kubernetes objects the Pulumi program declares, as the API server would see them.

``render_app_objects()`` runs the program under mocks (``tests/infra/harness``)
and returns the App component's objects as plain, API-shaped dicts
(``apiVersion``, ``kind``, camelCase fields), in an order that can be applied
one by one (namespace first, custom resources last). Other suites reuse it:
the Kubernetes-backend tests create these objects with a server-side dry run
against a real API server.

``echo_replicaset()`` wraps the echo pod template (published in a ConfigMap)
in a ReplicaSet with the provisioner's own code, so the echo pod can
be validated and scanned like every declared object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from infra.workload import TEMPLATE_FILE
from services.provisioner.backends.kubernetes.objects import pool_replicaset
from tests.infra.harness import Recorded, StackRun, run_stack

APP_COMPONENT = "pingpod:app:App"

# Apply order: what others refer to comes first.
_KIND_ORDER = [
    "Namespace",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "NetworkPolicy",
    "Service",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "TargetGroupBinding",
]

_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_SIG_KEY = "4dabf18193072939515e22adb298388d"


def to_api(value: Any) -> Any:
    """Mock-engine values -> JSON the API accepts.

    Numbers cross the mock engine as protobuf doubles (``replicas: 2.0``);
    integral ones go back to ints. Secret wrappers are unwrapped.
    """
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return to_api(value.get("value"))
        return {k: to_api(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [to_api(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def kubernetes_objects(resources: Iterable[Recorded]) -> list[dict[str, Any]]:
    """API-shaped objects from recorded Kubernetes resources, in apply order."""
    objects = [to_api(r.inputs) for r in resources]

    def order(obj: dict[str, Any]) -> int:
        kind = obj.get("kind", "")
        return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)

    return sorted(objects, key=order)


def app_objects(run: StackRun) -> list[dict[str, Any]]:
    """The App component's objects from one program run."""
    return kubernetes_objects(
        r
        for r in run.resources
        if r.parent_type == APP_COMPONENT
        and r.type.startswith("kubernetes:")
        and not r.type.startswith("pulumi:providers:")
    )


def render_app_objects(stack: str = "local") -> list[dict[str, Any]]:
    """Run stack ``stack`` (``local`` or ``prod``) under mocks; return the App's objects."""
    return app_objects(run_stack(stack))


def echo_template(objects: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The echo pod template the App published (its ConfigMap's JSON)."""
    for obj in objects:
        if obj.get("kind") == "ConfigMap" and TEMPLATE_FILE in obj.get("data", {}):
            return json.loads(obj["data"][TEMPLATE_FILE])
    raise LookupError("no ConfigMap with the echo pod template")


def echo_replicaset(objects: list[dict[str, Any]], name: str = "echo-example") -> dict[str, Any]:
    """A pool member as the provisioner creates it: the template in a one-pod ReplicaSet."""
    namespace = next(o["metadata"]["name"] for o in objects if o.get("kind") == "Namespace")
    replicaset = pool_replicaset(echo_template(objects), name=name)
    replicaset["metadata"]["namespace"] = namespace
    return replicaset
