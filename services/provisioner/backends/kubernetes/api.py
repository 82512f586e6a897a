"""Kubernetes API transport: blocking client calls on a thread pool, errors
mapped to the provisioner's, and the few writes the backend makes.

Answers a caller handles itself (403, 404, 409, 410, 422) come back as
ApiException; anything else, and a transport failure, is BackendUnavailable
(503): the platform is unwell. Writes go through the JSON API without model
round trips, and what we write or delete shows in the watch cache at once.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from services.provisioner.backends.kubernetes import objects as ko
from services.provisioner.backends.kubernetes.client import API_THREADS
from services.provisioner.errors import BackendUnavailable

T = TypeVar("T")
Obj = ko.Obj
MERGE_PATCH = "application/merge-patch+json"
API_TIMEOUT = 10  # seconds, per API request
_EXPECTED = {403, 404, 409, 410, 422}


def unavailable(exc: ApiException) -> BackendUnavailable:
    return BackendUnavailable(f"the Kubernetes API answered {exc.status} {exc.reason}")


def body_of(response: Any) -> Obj:
    """The JSON body of a call made with `_preload_content=False`."""
    return json.loads(response.data)


class KubeApi:
    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.client = api_client
        self.namespace = namespace
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.version = client.VersionApi(api_client)
        # Called on every answer, errors included: the API server is alive.
        self.heard: Callable[[], None] = lambda: None
        # Our own ReplicaSet writes and deletes, for the watch cache to apply at once.
        self.written: Callable[[Obj], None] = lambda rs: None
        self.deleted: Callable[[str], None] = lambda name: None
        self.pod_written: Callable[[Obj], None] = lambda pod: None  # likewise for pods
        self.pod_deleted: Callable[[str], None] = lambda name: None
        self._executor: ThreadPoolExecutor | None = None

    def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube-api")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call in the API thread pool; transport trouble -> 503."""
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self._executor, functools.partial(fn, *args, **kwargs)
            )
        except ApiException as exc:
            if (exc.status or 500) < 500:  # a 5xx may come from a server that cannot reach etcd
                self.heard()
            if exc.status in _EXPECTED:
                raise
            raise unavailable(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(
                f"the Kubernetes API is unreachable: {type(exc).__name__}"
            ) from exc
        self.heard()
        return result

    async def _write(
        self, fn: Callable[..., Any], *args: Any, cache: Callable[[Obj], None], **kwargs: Any
    ) -> Obj:
        """A write whose answer (the object as stored) goes into the cache at once."""
        response = await self.call(fn, *args, _preload_content=False, **kwargs)
        stored = body_of(response)
        cache(stored)
        return stored

    async def patch_rs(self, name: str, patch: Obj, *, request_timeout: float = API_TIMEOUT) -> Obj:
        return await self._write(
            self.apps.patch_namespaced_replica_set,
            name,
            self.namespace,
            patch,
            cache=self.written,
            _content_type=MERGE_PATCH,
            _request_timeout=request_timeout,
        )

    async def annotate_rs(self, name: str, annotations: dict[str, str]) -> Obj:
        return await self.patch_rs(name, {"metadata": {"annotations": annotations}})

    async def create_rs(self, manifest: Obj, *, request_timeout: float = API_TIMEOUT) -> Obj:
        return await self._write(
            self.apps.create_namespaced_replica_set,
            self.namespace,
            manifest,
            cache=self.written,
            _request_timeout=request_timeout,
        )

    async def delete_rs(self, name: str, *, version: str | None = None) -> None:
        """Delete a pool ReplicaSet; its pod goes with it (background propagation).

        With `version`, only if it is still at that resourceVersion (else 409).
        """
        options: Obj = {"propagationPolicy": "Background"}
        if version is not None:
            options["preconditions"] = {"resourceVersion": version}
        try:
            await self.call(
                self.apps.delete_namespaced_replica_set,
                name,
                self.namespace,
                body=options,
                _preload_content=False,  # the answer is not read: no model to build
                _request_timeout=API_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404:
                self.deleted(name)
            raise
        self.deleted(name)

    async def delete_pod(self, name: str, *, version: str | None = None) -> None:
        """Delete a pod; with `version`, only if it is still at that resourceVersion."""
        options: Obj = {}
        if version is not None:
            options["preconditions"] = {"resourceVersion": version}
        await self.call(
            self.core.delete_namespaced_pod,
            name,
            self.namespace,
            body=options,
            _preload_content=False,  # the answer is not read: no model to build
            _request_timeout=API_TIMEOUT,
        )
        if version is not None:  # a warm member: out of the pool at once
            self.pod_deleted(name)

    async def create_pod(self, manifest: Obj) -> Obj:
        return await self._write(
            self.core.create_namespaced_pod,
            self.namespace,
            manifest,
            cache=self.pod_written,
            _request_timeout=API_TIMEOUT,
        )

    async def mark_pod(self, name: str, metadata: Obj) -> None:
        """Merge `metadata` into a pod's. The answer is not put in the cache: the pod may
        be deleted meanwhile (a kill), and the watch brings the change anyway."""
        await self.call(
            self.core.patch_namespaced_pod,
            name,
            self.namespace,
            {"metadata": metadata},
            _content_type=MERGE_PATCH,
            _preload_content=False,  # the watch brings the pod: no model to build
            _request_timeout=API_TIMEOUT,
        )

    async def session_rs(self, key: str) -> Obj | None:
        """The session's ReplicaSet, asked of the API (the cache may not have it yet)."""
        if not ko.is_label_value(key):
            return None
        response = await self.call(
            self.apps.list_namespaced_replica_set,
            self.namespace,
            label_selector=f"{ko.POOL_SELECTOR},{ko.SESSION_LABEL}={key}",
            _preload_content=False,
            _request_timeout=API_TIMEOUT,
        )
        items = body_of(response).get("items") or []
        return items[0] if items else None
