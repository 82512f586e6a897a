"""Kubernetes backend: pool members are ReplicaSets of one echo pod.

Kubernetes is the only state store (DESIGN.md "Session model"): a watch cache
of the pool's ReplicaSets and Pods answers reads; a claim is one PATCH of a
warm ReplicaSet with its resourceVersion as precondition (409: another replica
won, take the next); killing deletes the pod and the ReplicaSet controller
replaces it; ending deletes the ReplicaSet. Only the Lease holder refills the
pool and reaps expired sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from services.common.ratelimit import TokenBucket
from services.provisioner.backends import kube_objects as ko
from services.provisioner.backends.base import (
    Claim,
    Endpoint,
    PodInfo,
    PoolStatus,
    SessionEvent,
    SessionInfo,
    wait_endpoint,
)
from services.provisioner.backends.kube_cache import WatchCache
from services.provisioner.backends.kube_lease import LeaderLease
from services.provisioner.backends.kube_view import PoolView
from services.provisioner.errors import (
    BackendUnavailable,
    ConfigError,
    LimitExceeded,
    PodNotRunning,
    SessionNotFound,
)
from services.provisioner.metrics import Metrics
from services.provisioner.pool import max_pods, pods_to_start, pool_empty_error
from services.provisioner.sessions import EndReason, end_reason, touch_interval
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
Obj = ko.Obj
MERGE_PATCH = "application/merge-patch+json"
API_TIMEOUT = 10  # seconds, per API request
API_THREADS = 16  # the client blocks: API calls run in a pool of this size
# API answers a caller handles itself; anything else means the platform is unwell.
_EXPECTED = {403, 404, 409, 410, 422}


def body_of(response: Any) -> Obj:
    """The JSON body of a call made with `_preload_content=False` (no model round trip)."""
    return json.loads(response.data)


class KubernetesBackend:
    def __init__(
        self,
        *,
        api_client: client.ApiClient,
        namespace: str,
        template: Obj,
        metrics: Metrics,
        pool_size: int = 4,
        max_sessions: int = 50,
        refill_per_second: float = 5.0,
        idle_timeout: float = 60.0,
        cold_start_timeout: float = 20.0,
        max_cold_starts: int = 8,
        lease_name: str = "pingpod-provisioner",
        lease_duration: float = 15.0,
        identity: str | None = None,
        echo_port: int = 8080,
        url_template: str = "ws://{ip}:{port}/ws",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.template = template
        self.metrics = metrics
        self.pool_size = pool_size
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.cold_start_timeout = cold_start_timeout
        self.max_cold_starts = max_cold_starts
        self._cold = 0  # cold starts under way for claims
        self.echo_port = echo_port
        self.url_template = url_template
        self.clock = clock
        self.identity = identity or f"{socket.gethostname()}-{secrets.token_hex(3)}"
        self.lease = LeaderLease(
            client.CoordinationV1Api(api_client),
            namespace=namespace,
            name=lease_name,
            identity=self.identity,
            duration=lease_duration,
        )
        self._refill = TokenBucket(rate=refill_per_second, burst=max(1, pool_size))
        self._lookups = TokenBucket(rate=20, burst=20)  # cache misses that may ask the API
        self.view = PoolView(metrics=metrics, clock=clock)
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._rs: WatchCache | None = None
        self._pods: WatchCache | None = None
        self._running = False

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> KubernetesBackend:
        try:
            template = json.loads(settings.echo_pod_template.read_text())
            if not isinstance(template, dict) or not template.get("spec", {}).get("containers"):
                raise ValueError("no spec.containers")
        except (OSError, ValueError) as exc:
            raise ConfigError(
                "ECHO_POD_TEMPLATE", "a JSON pod template file with spec.containers", str(exc)
            ) from None
        configuration = client.Configuration()
        try:
            if "KUBERNETES_SERVICE_HOST" in os.environ:
                config.load_incluster_config(client_configuration=configuration)
            else:
                config.load_kube_config(client_configuration=configuration)
        except config.ConfigException as exc:
            raise ConfigError(
                "KUBECONFIG", "in-cluster credentials or a kubeconfig", str(exc)
            ) from None
        # One connection per API thread and watch, so none is dropped and re-dialled.
        configuration.connection_pool_maxsize = API_THREADS + 4
        return cls(
            api_client=client.ApiClient(configuration),
            namespace=settings.namespace,
            template=template,
            metrics=metrics,
            pool_size=settings.pool_size,
            max_sessions=settings.max_sessions,
            refill_per_second=settings.refill_per_second,
            idle_timeout=settings.session_idle_timeout,
            cold_start_timeout=settings.cold_start_timeout,
            max_cold_starts=settings.max_cold_starts,
            lease_name=settings.lease_name,
            lease_duration=settings.lease_duration,
            identity=settings.pod_name or None,
            echo_port=settings.echo_port,
            url_template=settings.echo_url_template,
        )

    # lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube-api")
        self._rs = WatchCache(
            kind="replicasets",
            list_fn=self.apps.list_namespaced_replica_set,
            namespace=self.namespace,
            label_selector=ko.POOL_SELECTOR,
            loop=loop,
            store=self.view.replicaset_store,
            on_change=self.view.on_replicaset,
            on_sync=self.view.notify,
        )
        self._pods = WatchCache(
            kind="pods",
            list_fn=self.core.list_namespaced_pod,
            namespace=self.namespace,
            label_selector=ko.POD_SELECTOR,
            loop=loop,
            store=self.view.pod_store,
            on_change=self.view.on_pod,
            on_sync=self.view.notify,
        )
        self._rs.start()
        self._pods.start()
        self._running = True
        self._spawn(self._leader_loop())

    async def aclose(self) -> None:
        self._running = False
        for cache in (self._rs, self._pods):
            if cache is not None:
                cache.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(BackendUnavailable):
            await self._call(self.lease.release)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.api_client.close()

    def ready(self) -> bool:
        return bool(
            self._running and self._rs and self._rs.synced and self._pods and self._pods.synced
        )

    # the contract

    async def claim(self, key: str, *, now: float, expires_at: float) -> Claim:
        if not self.ready():
            raise BackendUnavailable("not in sync with the Kubernetes API; try again shortly")
        if self.view.count(ko.ASSIGNED) >= self.max_sessions:
            raise LimitExceeded(
                "at_capacity",
                f"all {self.max_sessions} session slots are in use; try again shortly",
                retry_after=5,
            )
        assign = ko.assignment(key, now=now, expires_at=expires_at)
        candidates = self.view.warm_ready()
        random.shuffle(candidates)  # replicas claiming at once rarely pick the same one
        for rs in candidates:
            patch = {"metadata": {"resourceVersion": rs["metadata"]["resourceVersion"], **assign}}
            try:
                updated = await self._patch_rs(ko.name_of(rs), patch)
            except ApiException as exc:
                if exc.status in (404, 409):
                    self.metrics.rejections.labels("claim_conflict").inc()
                    continue
                raise self._unavailable(exc) from exc
            self._wake.set()
            pod = self.view.current_pod(ko.name_of(updated))
            if pod is not None and ko.pod_ready(pod):
                return Claim(
                    session=self.view.info(updated), pod=self.view.pod_info(pod), warm=True
                )
        if self._cold >= self.max_cold_starts:
            raise pool_empty_error()
        self._cold += 1
        try:
            return await self._claim_cold(key, assign)
        finally:
            self._cold -= 1

    async def get(self, key: str) -> SessionInfo:
        return self.view.info(await self._session_rs(key))

    async def kill(self, key: str) -> PodInfo:
        rs = await self._session_rs(key)
        pod = self.view.current_pod(ko.name_of(rs))
        if pod is None:
            raise PodNotRunning()
        try:
            await self._call(
                self.core.delete_namespaced_pod,
                ko.name_of(pod),
                self.namespace,
                _request_timeout=API_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise self._unavailable(exc) from exc
        count = int(ko.annotation_float(rs, ko.REPLACEMENTS)) + 1
        with contextlib.suppress(ApiException):
            await self._patch_rs(
                ko.name_of(rs), {"metadata": {"annotations": {ko.REPLACEMENTS: str(count)}}}
            )
        self.metrics.kills.inc()
        log.info("pod_killed", extra={"session": key[:12], "pod": ko.name_of(pod)})
        return self.view.pod_info(pod)

    async def release(self, key: str, reason: str = EndReason.DELETED) -> None:
        rs = await self._session_rs(key)
        name = ko.name_of(rs)
        if reason != EndReason.DELETED:
            # Other replicas' gateways read the reason from the object they see deleted.
            with contextlib.suppress(ApiException):
                await self._patch_rs(name, {"metadata": {"annotations": {ko.END_REASON: reason}}})
        try:
            await self._delete_rs(name)
        except ApiException as exc:
            if exc.status != 404:
                raise self._unavailable(exc) from exc
        self.view.ended.add(key, reason)
        self.metrics.sessions_ended.labels(reason).inc()
        log.info("session_ended", extra={"session": key[:12], "reason": reason})

    async def touch(self, key: str, now: float) -> None:
        rs = await self._session_rs(key)
        # Patch at most every half touch interval: the idle timeout is coarse.
        if now - ko.annotation_float(rs, ko.LAST_ACTIVE) < touch_interval(self.idle_timeout) / 2:
            return
        try:
            await self._patch_rs(
                ko.name_of(rs), {"metadata": {"annotations": {ko.LAST_ACTIVE: f"{now:.3f}"}}}
            )
        except ApiException as exc:
            if exc.status == 404:
                raise SessionNotFound() from exc
            raise self._unavailable(exc) from exc

    async def endpoint(self, key: str, *, avoid: str = "", patience: float = 0.0) -> Endpoint:
        async def current() -> tuple[Endpoint | None, asyncio.Event]:
            changed = self.view.changed
            rs = await self._session_rs(key)
            pod = self.view.current_pod(ko.name_of(rs))
            ip = (pod or {}).get("status", {}).get("podIP")
            if pod is not None and ko.pod_ready(pod) and ip:
                url = self.url_template.format(ip=ip, port=self.echo_port)
                return Endpoint(url=url, pod=ko.name_of(pod)), changed
            return None, changed

        return await wait_endpoint(current, avoid=avoid, patience=patience)

    async def pool(self) -> PoolStatus:
        warm = len(self.view.warm_ready())
        return PoolStatus(
            warm=warm,
            starting=self.view.count(ko.WARM) - warm,
            assigned=self.view.count(ko.ASSIGNED),
            target=self.pool_size,
            capacity=self.max_sessions,
        )

    def subscribe(
        self, key: str
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[SessionEvent]]:
        return self.view.hub.subscribe(key)

    async def _session_rs(self, key: str) -> Obj:
        rs = self.view.find(key)
        if rs is None and self._lookups.take(time.monotonic()) == 0:
            rs = await self._lookup(key)  # created by another replica a moment ago?
        if rs is None or ko.terminating(rs):
            raise SessionNotFound()
        return rs

    async def _lookup(self, key: str) -> Obj | None:
        if not ko.is_label_value(key):
            return None
        response = await self._call(
            self.apps.list_namespaced_replica_set,
            self.namespace,
            label_selector=f"{ko.POOL_SELECTOR},{ko.SESSION_LABEL}={key}",
            _preload_content=False,
            _request_timeout=API_TIMEOUT,
        )
        items = body_of(response).get("items") or []
        return items[0] if items else None

    # API calls

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking client call in the API thread pool; transport trouble -> 503."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, functools.partial(fn, *args, **kwargs)
            )
        except ApiException as exc:
            if exc.status in _EXPECTED:
                raise
            raise self._unavailable(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(
                f"the Kubernetes API is unreachable: {type(exc).__name__}"
            ) from exc

    @staticmethod
    def _unavailable(exc: ApiException) -> BackendUnavailable:
        return BackendUnavailable(f"the Kubernetes API answered {exc.status} {exc.reason}")

    async def _patch_rs(self, name: str, patch: Obj) -> Obj:
        response = await self._call(
            self.apps.patch_namespaced_replica_set,
            name,
            self.namespace,
            patch,
            _content_type=MERGE_PATCH,
            _preload_content=False,
            _request_timeout=API_TIMEOUT,
        )
        updated = body_of(response)
        self._apply_rs(updated)
        return updated

    async def _create_rs(self, manifest: Obj) -> Obj:
        response = await self._call(
            self.apps.create_namespaced_replica_set,
            self.namespace,
            manifest,
            _preload_content=False,
            _request_timeout=API_TIMEOUT,
        )
        created = body_of(response)
        self._apply_rs(created)
        return created

    async def _delete_rs(self, name: str, *, version: str | None = None) -> None:
        """Delete a pool ReplicaSet; its pod goes with it (background propagation).

        With `version`, only if it is still at that resourceVersion.
        """
        options: Obj = {"propagationPolicy": "Background"}
        if version is not None:
            options["preconditions"] = {"resourceVersion": version}
        await self._call(
            self.apps.delete_namespaced_replica_set,
            name,
            self.namespace,
            body=options,
            _request_timeout=API_TIMEOUT,
        )

    def _apply_rs(self, rs: Obj) -> None:
        """Put our own write in the cache at once instead of waiting for the watch."""
        if self._rs is not None:
            self._rs.put(rs)

    async def _claim_cold(self, key: str, assign: Obj) -> Claim:
        name = ko.slot_name()
        manifest = ko.pool_replicaset(self.template, name=name, session=assign)
        try:
            rs = await self._create_rs(manifest)
        except ApiException as exc:
            if exc.status == 403 and "quota" in str(exc.body):
                raise LimitExceeded("at_capacity", "the namespace is at its quota", 10) from exc
            raise self._unavailable(exc) from exc
        try:
            async with asyncio.timeout(self.cold_start_timeout):
                while True:
                    changed = self.view.changed
                    pod = self.view.current_pod(name)
                    if pod is not None and ko.pod_ready(pod):
                        return Claim(
                            session=self.view.info(rs), pod=self.view.pod_info(pod), warm=False
                        )
                    await changed.wait()
        except TimeoutError:
            no_pod = self.view.current_pod(name) is None
            with contextlib.suppress(BackendUnavailable, ApiException):
                await self._delete_rs(name)
            if no_pod:  # the pod was never created: quota or a full cluster
                raise LimitExceeded(
                    "at_capacity", "no room for another pod right now; try again shortly", 10
                ) from None
            raise BackendUnavailable("the session's pod did not become Ready in time") from None

    # the Lease holder's loop

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _leader_loop(self) -> None:
        renew_every = max(0.5, self.lease.duration / 3)
        renewed = 0.0
        while self._running:
            try:
                if time.monotonic() - renewed >= renew_every:
                    await self._call(self.lease.step)
                    renewed = time.monotonic()
                if self.lease.is_leader and self.ready():
                    await self._reconcile()
            except BackendUnavailable as exc:
                self.lease.is_leader = False
                log.warning("reconcile_failed", extra={"error": exc.detail})
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(1.0, renew_every)):
                    await self._wake.wait()

    async def _reconcile(self) -> None:
        now = self.clock()
        for rs in self.view.replicasets():
            key = ko.labels(rs).get(ko.SESSION_LABEL)
            if ko.labels(rs).get(ko.STATE_LABEL) != ko.ASSIGNED or not key:
                continue
            reason = end_reason(
                now=now,
                expires_at=ko.annotation_float(rs, ko.EXPIRES_AT),
                last_active=ko.annotation_float(rs, ko.LAST_ACTIVE),
                idle_timeout=self.idle_timeout,
            )
            if reason is not None:
                with contextlib.suppress(SessionNotFound, ApiException):
                    await self.release(key, reason)
        status = await self.pool()
        mono = time.monotonic()
        n = pods_to_start(
            warm=status.warm,
            starting=status.starting,
            assigned=status.assigned,
            target=self.pool_size,
            max_pods=max_pods(max_sessions=self.max_sessions, pool_size=self.pool_size),
            budget=self._refill.available(mono),
        )
        for _ in range(n):
            self._refill.take(mono)
        results = await asyncio.gather(
            *(
                self._create_rs(ko.pool_replicaset(self.template, name=ko.slot_name()))
                for _ in range(n)
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                log.warning("refill_failed", extra={"error": str(result)[:200]})
        await self._trim(status.warm + status.starting - self.pool_size)

    async def _trim(self, excess: int) -> None:
        """Delete warm members beyond the target (POOL_SIZE lowered), not-Ready ones first.

        The resourceVersion precondition makes a delete lose to a concurrent claim.
        """
        if excess <= 0:
            return
        ready = {ko.name_of(rs) for rs in self.view.warm_ready()}
        warm = [
            rs for rs in self.view.replicasets() if ko.labels(rs).get(ko.STATE_LABEL) == ko.WARM
        ]
        warm.sort(key=lambda rs: ko.name_of(rs) in ready)
        for rs in warm[:excess]:
            with contextlib.suppress(ApiException):
                await self._delete_rs(ko.name_of(rs), version=rs["metadata"]["resourceVersion"])
