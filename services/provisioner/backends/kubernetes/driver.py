"""Kubernetes driver: a session is a ReplicaSet of one echo pod.

Kubernetes is the only state store (docs/architecture.md, "Session model"): a
watch cache of the pool's ReplicaSets and Pods answers reads (`cache`, `view`);
a claim is one PATCH of a warm ReplicaSet with its resourceVersion as
precondition (`claim`); killing deletes the pod and the ReplicaSet controller
replaces it; ending deletes the ReplicaSet. Warm members are ReplicaSets too,
or (POOL_MEMBERS=pods) bare pods that a claim's ReplicaSet adopts. Only the
Lease holder refills, trims and reaps (`leader`). API transport: `api`;
credentials: `client`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from services.common.ratelimit import TokenBucket
from services.provisioner.backends.base import Claim, Endpoint, PodInfo, PoolMember, SessionInfo
from services.provisioner.backends.events import SessionEvents
from services.provisioner.backends.kubernetes import nodes as kn
from services.provisioner.backends.kubernetes import objects as ko
from services.provisioner.backends.kubernetes import podview
from services.provisioner.backends.kubernetes.api import KubeApi, unavailable
from services.provisioner.backends.kubernetes.cache import Change, WatchCache
from services.provisioner.backends.kubernetes.claim import ClaimProtocol
from services.provisioner.backends.kubernetes.client import api_client, load_template
from services.provisioner.backends.kubernetes.health import ApiHealth
from services.provisioner.backends.kubernetes.leader import Leader
from services.provisioner.backends.kubernetes.lease import LeaderLease
from services.provisioner.backends.kubernetes.recycle import recycle
from services.provisioner.backends.kubernetes.roster import ReplicaRoster
from services.provisioner.backends.kubernetes.view import PoolView
from services.provisioner.backends.tasks import Tasks
from services.provisioner.errors import BackendUnavailable, PodNotRunning, SessionNotFound
from services.provisioner.pool import SessionTimes
from services.provisioner.sessions import EndReason, touch_interval
from services.provisioner.settings import Settings

log = logging.getLogger(__name__)

Obj = ko.Obj
# A "kill my gateway" request older than this when first seen (a relist after an
# outage, say) is history, not a request.
_DRAIN_REQUEST_FRESH = 30.0


class KubernetesDriver:
    max_starts: int | None = None  # a start is one API create; the cluster runs the pod

    def __init__(
        self,
        *,
        api: KubeApi,
        events: SessionEvents,
        template: Obj,
        lease: LeaderLease,
        roster: ReplicaRoster,
        idle_timeout: float = 60.0,
        cold_start_timeout: float = 20.0,
        claim_timeout: float = 10.0,
        echo_port: int = 8080,
        url_template: str = "ws://{ip}:{port}/ws",
        recycle: bool = False,
        bare_pods: bool = False,
    ) -> None:
        self.api = api
        self.view = PoolView(events)
        self._tasks = Tasks()  # the claims' follow-up writes
        self.claims = ClaimProtocol(
            api,
            self.view,
            template=template,
            cold_start_timeout=cold_start_timeout,
            claim_timeout=claim_timeout,
            tasks=self._tasks,
        )
        self.health = ApiHealth(self._probe)
        api.heard = self.health.heard
        self.leader = Leader(api, lease, template=template, bare_pods=bare_pods)
        self.bare_pods = bare_pods
        self.tick = self.leader.tick
        self.roster = roster
        self.idle_timeout = idle_timeout
        self.url_template = url_template
        self.echo_port = echo_port
        self._lookups = TokenBucket(rate=20, burst=20)  # cache misses that may ask the API
        self.recycle = recycle
        self._caches: list[WatchCache] = []

    @classmethod
    def from_settings(cls, settings: Settings, events: SessionEvents) -> KubernetesDriver:
        template = load_template(settings.echo_pod_template)
        api = KubeApi(api_client(), settings.namespace)
        identity = settings.pod_name or f"{socket.gethostname()}-{secrets.token_hex(3)}"
        lease = LeaderLease(
            api.coordination,
            namespace=settings.namespace,
            name=settings.lease_name,
            identity=identity,
            duration=settings.lease_duration,
        )
        roster = ReplicaRoster(
            api.coordination,
            namespace=settings.namespace,
            roster=settings.lease_name,
            identity=identity,
            duration=settings.lease_duration,
        )
        return cls(
            api=api,
            events=events,
            template=template,
            lease=lease,
            roster=roster,
            idle_timeout=settings.session_idle_timeout,
            cold_start_timeout=settings.cold_start_timeout,
            claim_timeout=settings.claim_timeout,
            echo_port=settings.echo_port,
            url_template=settings.echo_url_template,
            recycle=settings.session_end == "recycle",
            bare_pods=settings.pool_members == "pods",
        )

    # lifecycle

    async def open(self) -> None:
        self.api.open()
        view, apps, core = self.view, self.api.apps, self.api.core
        replicasets = self._watch(
            "replicasets",
            apps.list_namespaced_replica_set,
            ko.POOL_SELECTOR,
            self._on_replicaset,
            self._replicasets_synced,
        )
        pods = self._watch(
            "pods", core.list_namespaced_pod, ko.POD_SELECTOR, view.on_pod, view.notify
        )
        # Nodes last, and not in `ready()`: the node strip is news, claims never need it.
        nodes = self._watch("nodes", core.list_node, "", view.on_node, view.notify)
        self._caches = [replicasets, pods, nodes]
        for cache in self._caches:
            cache.start()
        self.health.start()
        self.api.written, self.api.deleted = replicasets.put, replicasets.forget
        self.api.pod_written, self.api.pod_deleted = pods.put, pods.forget

    def _replicasets_synced(self) -> None:
        """After the first list, claims and new members seen in the watch are demand."""
        if self._caches and self._caches[0].synced:
            self.view.counting = True
        self.view.notify()

    def _on_replicaset(self, kind: str, rs: Obj, previous: Obj | None) -> None:
        self.view.on_replicaset(kind, rs, previous)
        if kind != "DELETED" and self.claims.collect(rs):
            return
        # A new gateway-drain annotation is a request for the replica holding the
        # session's socket: every replica sees it, that one acts (`Relay`).
        if kind == "DELETED" or previous is None:
            return
        requested = ko.annotation(rs, ko.GATEWAY_DRAIN)
        key = ko.labels(rs).get(ko.SESSION_LABEL)
        if not key or not requested or requested == ko.annotation(previous, ko.GATEWAY_DRAIN):
            return
        if abs(time.time() - ko.annotation_float(rs, ko.GATEWAY_DRAIN)) < _DRAIN_REQUEST_FRESH:
            self.view.events.gateway_drain(key)

    def _watch(
        self,
        kind: str,
        list_fn: Callable[..., Any],
        selector: str,
        on_change: Change,
        on_sync: Callable[[], None],
    ) -> WatchCache:
        stores = {"replicasets": self.view.replicaset_store, "pods": self.view.pod_store}
        return WatchCache(
            kind=kind,
            list_fn=list_fn,
            namespace=None if kind == "nodes" else self.api.namespace,  # nodes: cluster-scoped
            store=stores.get(kind, self.view.node_store),
            label_selector=selector,
            loop=asyncio.get_running_loop(),
            on_change=on_change,
            on_sync=on_sync,
            heard=self.health.heard,
        )

    async def close(self) -> None:
        await self.health.aclose()
        for cache in self._caches:
            cache.stop()
        await self._tasks.close(grace=2.0)
        await self.leader.release()
        try:
            await self.api.call(self.roster.leave)
        except BackendUnavailable as exc:
            log.warning("replica_leave_failed", extra={"error": exc.detail})
        self.api.close()

    def ready(self) -> bool:
        synced = bool(self._caches) and all(cache.synced for cache in self._caches[:2])
        return synced and self.health.healthy()

    @property
    def unready_detail(self) -> str:
        if not self.health.healthy():
            return "the Kubernetes API is not answering; try again shortly"
        return "not in sync with the Kubernetes API; try again shortly"

    async def _probe(self, request_timeout: float) -> None:
        await self.api.call(self.api.version.get_code, _request_timeout=request_timeout)

    def replicas(self) -> int:
        return self.roster.count

    async def leading(self) -> bool:
        await self.roster.keep(self.api, every=self.leader.renew_every)
        if not (await self.leader.leading() and self.ready()):
            return False
        if self.recycle:  # only recycling retires pods: no scan of every pod otherwise
            await self.leader.sweep_retired(set(self.view.stale_retired()))
        if self.bare_pods:
            await self.leader.sweep_strays(set(self.view.strays()))
        return True

    # listing, members, claims

    def warm(self) -> list[tuple[Obj, bool]]:
        return self.view.warm()

    def assigned(self) -> int:
        return self.view.assigned()

    def sessions(self) -> list[SessionTimes]:
        return self.view.sessions()

    def pool_pods(self) -> list[PoolMember]:
        return podview.members(self.view.replicaset_store, self.view.pod_store)

    def pool_nodes(self) -> list[kn.NodeBrief]:
        return kn.briefs(self.view.node_store, self.view.pod_store)

    def pool_changed(self) -> asyncio.Event:
        return self.view.changed

    async def start_member(self) -> None:
        await self.leader.start_member()

    async def delete_member(self, member: Obj) -> None:
        await self.leader.delete_member(member)

    async def claim_warm(
        self, member: Obj, key: str, *, now: float, expires_at: float
    ) -> Claim | None:
        claim = self.claims.warm_pod if ko.is_pod(member) else self.claims.warm
        return await claim(member, key, now=now, expires_at=expires_at)

    async def claim_cold(self, key: str, *, now: float, expires_at: float, budget: float) -> Claim:
        return await self.claims.cold(key, now=now, expires_at=expires_at, budget=budget)

    # sessions

    async def info(self, key: str) -> SessionInfo:
        rs = await self._session_rs(key)
        info = self.view.info(rs)
        pod = self.view.current_pod(ko.name_of(rs))
        if info.pod is None or pod is None:
            return info
        phases = podview.pod_phases(pod)
        return dataclasses.replace(info, pod=dataclasses.replace(info.pod, phases=phases))

    async def kill(self, key: str) -> PodInfo:
        rs = await self._session_rs(key)
        name = ko.name_of(rs)
        pod = self.view.current_pod(name)
        if pod is None:
            raise PodNotRunning()
        await self._delete_pod(ko.name_of(pod))
        # The pod is gone: the count is for display, so its failure does not undo the kill.
        count = int(ko.annotation_float(rs, ko.REPLACEMENTS)) + 1
        await self._annotate(name, {ko.REPLACEMENTS: str(count)}, key=key)
        return self.view.pod_info(pod)

    async def end(self, key: str, reason: str) -> str:
        rs = await self._session_rs(key)
        if self.recycle:
            return await recycle(self.api, self.view, rs, key, reason)
        name = ko.name_of(rs)
        self.view.ending.add(name)
        if reason != EndReason.DELETED:
            # Other replicas' gateways read the reason from the object they see deleted.
            await self._annotate(name, {ko.END_REASON: reason}, key=key)
        try:
            await self.api.delete_rs(name)
        except (ApiException, BackendUnavailable) as exc:
            if not isinstance(exc, ApiException):
                self.view.ending.discard(name)
                raise
            if exc.status != 404:
                self.view.ending.discard(name)
                raise unavailable(exc) from exc
        pod = self.view.current_pod(name)
        # A claimed bare pod not adopted yet is no ReplicaSet's: the collector would leave it.
        # Best effort: the Lease holder sweeps a claimed pod left without a ReplicaSet.
        for bare in (p for p in self.view.pods(name) if ko.bare(p) and not ko.terminating(p)):
            try:
                await self._delete_pod(ko.name_of(bare))
            except BackendUnavailable as exc:
                log.warning(
                    "pod_delete_failed", extra={"pod": ko.name_of(bare), "error": exc.detail}
                )
        return ko.name_of(pod) if pod else ""

    async def _delete_pod(self, name: str) -> None:
        try:
            await self.api.delete_pod(name)
        except ApiException as exc:
            if exc.status != 404:
                raise unavailable(exc) from exc

    async def touch(self, key: str, now: float) -> None:
        rs = await self._session_rs(key)
        # Patch at most every half touch interval: the idle timeout is coarse.
        if now - ko.annotation_float(rs, ko.LAST_ACTIVE) < touch_interval(self.idle_timeout) / 2:
            return
        try:
            await self.api.annotate_rs(ko.name_of(rs), {ko.LAST_ACTIVE: f"{now:.3f}"})
        except ApiException as exc:
            if exc.status == 404:
                raise SessionNotFound() from exc
            raise unavailable(exc) from exc

    async def endpoint(self, key: str) -> Endpoint | None:
        rs = await self._session_rs(key)
        pod = self.view.current_pod(ko.name_of(rs))
        ip = (pod or {}).get("status", {}).get("podIP")
        if pod is None or not ko.pod_ready(pod) or not ip:
            return None
        url = self.url_template.format(ip=ip, port=self.echo_port)
        return Endpoint(url=url, pod=ko.name_of(pod))

    async def drain_gateway(self, key: str, now: float) -> None:
        rs = await self._session_rs(key)
        try:
            await self.api.annotate_rs(ko.name_of(rs), {ko.GATEWAY_DRAIN: f"{now:.3f}"})
        except ApiException as exc:
            if exc.status == 404:
                raise SessionNotFound() from exc
            raise unavailable(exc) from exc

    async def _session_rs(self, key: str) -> Obj:
        rs = self.view.find(key)
        if rs is None and self._lookups.take(time.monotonic()) == 0:
            rs = await self.api.session_rs(key)  # created by another replica a moment ago?
        if rs is None or ko.terminating(rs):
            raise SessionNotFound()
        return rs

    async def _annotate(self, name: str, annotations: dict[str, str], *, key: str) -> None:
        """A best-effort annotation: its failure is logged, not raised."""
        try:
            await self.api.annotate_rs(name, annotations)
        except (ApiException, BackendUnavailable) as exc:
            log.warning(
                "annotation_failed",
                extra={
                    "session": key[:12],
                    "replicaset": name,
                    "annotations": sorted(annotations),
                    "error": str(exc)[:200],
                },
            )
