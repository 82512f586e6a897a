"""Install add-ons on a running control plane as its admin: server-side apply of
API-shaped objects, status patches, deletes, and waiting for CRDs to be served.

Shared by the add-on components (Karpenter, agent-sandbox, metrics-server), whose
CRDs and RBAC come from their releases' YAML kept beside their binaries.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .launch import ControlPlaneError
from .loopback import HttpError

if TYPE_CHECKING:
    from .cluster import ControlPlane

FIELD_MANAGER = "pingpod"

Obj = dict[str, Any]


def api_path(obj: Obj) -> str:
    """The object's URL: core or group API, namespaced when it names a namespace."""
    group_version, kind = obj["apiVersion"], obj["kind"].lower()
    prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    meta = obj["metadata"]
    namespace = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
    plural = kind + ("es" if kind.endswith("s") else "s")
    return f"{prefix}{namespace}/{plural}/{meta['name']}"


def apply(cp: ControlPlane, objects: Iterable[Obj]) -> None:
    """Server-side apply of each object, as the admin (this is the installer's part)."""
    api = cp.admin(timeout=30.0)
    query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
    for obj in objects:
        path = f"{api_path(obj)}?{query}"
        # JSON is YAML: the apply content type takes either.
        status, text = api.raw("PATCH", path, obj, content_type="application/apply-patch+yaml")
        if status >= 300:
            raise HttpError(status, "PATCH", path, text)


def delete(cp: ControlPlane, objects: Iterable[Obj]) -> None:
    """Delete each object (foreground: a Deployment's pods go with it); gone already is fine."""
    api = cp.admin(timeout=30.0)
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
    for obj in objects:
        status, text = api.raw("DELETE", api_path(obj), body)
        if status not in (200, 202, 404):
            raise HttpError(status, "DELETE", api_path(obj), text)


def patch_status(cp: ControlPlane, obj: Obj, status: Obj) -> None:
    path = f"{api_path(obj)}/status"
    api = cp.admin()
    code, text = api.raw("PATCH", path, status, content_type="application/merge-patch+json")
    if code >= 300:
        raise HttpError(code, "PATCH", path, text)


def _established(cp: ControlPlane, name: str) -> bool:
    crd = cp.admin().json("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def install_crds(cp: ControlPlane, crds: list[Obj], timeout: float = 60.0) -> None:
    """Apply the CRDs and wait until each is Established (served)."""
    apply(cp, crds)
    deadline = time.monotonic() + timeout
    for crd in crds:
        while not _established(cp, crd["metadata"]["name"]):
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"CRD {crd['metadata']['name']} was never Established")
            time.sleep(0.1)


def wait_component(cp: ControlPlane, name: str, ready: Callable[[], bool], timeout: float) -> None:
    """Until ``ready()`` holds for the add-on ``name`` started with ``cp.run_component``;
    ControlPlaneError with its log's tail if it exits or times out first."""
    deadline = time.monotonic() + timeout
    while not ready():
        running = cp.component_running(name)
        if not running or time.monotonic() > deadline:
            state = "exited" if not running else f"not ready after {timeout:.0f}s"
            raise ControlPlaneError(f"{name} {state}:\n{cp.log_tail(name)}")
        time.sleep(0.2)
