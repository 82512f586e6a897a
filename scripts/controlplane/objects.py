"""Objects as API-shaped dicts, applied and deleted as the admin: what an add-on's
installer does (Karpenter's, metrics-server's), with the standard library only."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .loopback import HttpError

if TYPE_CHECKING:
    from .cluster import ControlPlane

FIELD_MANAGER = "pingpod"

Obj = dict[str, Any]


def path(obj: Obj) -> str:
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
        url = f"{path(obj)}?{query}"
        # JSON is YAML: the apply content type takes either.
        status, text = api.raw("PATCH", url, obj, content_type="application/apply-patch+yaml")
        if status >= 300:
            raise HttpError(status, "PATCH", url, text)


def delete(cp: ControlPlane, objects: Iterable[Obj]) -> None:
    """Delete each object (foreground: a Deployment's pods go with it); gone already is fine."""
    api = cp.admin(timeout=30.0)
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
    for obj in objects:
        status, text = api.raw("DELETE", path(obj), body)
        if status not in (200, 202, 404):
            raise HttpError(status, "DELETE", path(obj), text)


def exists(cp: ControlPlane, obj: Obj) -> bool:
    status, text = cp.admin().raw("GET", path(obj))
    if status not in (200, 404):
        raise HttpError(status, "GET", path(obj), text)
    return status == 200
