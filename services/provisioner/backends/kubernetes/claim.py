"""The claim protocol on Kubernetes (docs/architecture.md, "Claim protocol").

Warm: one merge PATCH of a warm ReplicaSet that sets the session's labels and
annotations, with the resourceVersion the cache saw as a precondition. Of two
replicas claiming the same one, the second gets 409 and tries the next
candidate; no lock, no leader. Cold: create a ReplicaSet that is the
session's from the start, then wait for its pod to be Ready, for at most the
claim's remaining time budget (then it is deleted and the claim is shed).
With POOL_MEMBERS=pods a warm member is a bare pod: the claim creates the
session's ReplicaSet of the pod's name, which adopts it; the name is the lock
(docs/architecture.md, "Bare pods as warm members").

A claim's writes wait no longer than the claim may (`CLAIM_TIMEOUT`), so a hung
API server costs a visitor a prompt 503, not the API timeout. Such a write may
still land later: its session is remembered as abandoned, and the driver
deletes the ReplicaSet when the watch shows it (no orphan).

A session's pods carry ``karpenter.sh/do-not-disrupt``, so node autoscaling
never takes a node from under a visitor: a cold claim's ReplicaSet starts its
pods with it, a warm claim puts it in the pod template (for the pods a kill
starts), and one more PATCH puts it on the pod already running, just after the
claim is answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

import urllib3
from kubernetes.client.exceptions import ApiException

from services.provisioner.backends.base import Claim
from services.provisioner.backends.kubernetes import objects as ko
from services.provisioner.backends.kubernetes.api import KubeApi, unavailable
from services.provisioner.backends.kubernetes.view import PoolView
from services.provisioner.backends.tasks import Tasks
from services.provisioner.errors import BackendUnavailable, ErrorCode, LimitExceeded

log = logging.getLogger(__name__)

Obj = ko.Obj
_ABANDONED_KEPT = 1000  # sessions whose claim write timed out, remembered (oldest dropped)


def create_refused(exc: ApiException) -> LimitExceeded | BackendUnavailable:
    """What a refused create of a session's ReplicaSet means to the visitor: the
    namespace's quota is capacity (429), anything else the API's trouble (503)."""
    if exc.status == 403 and "quota" in str(exc.body):
        return LimitExceeded(ErrorCode.AT_CAPACITY, "the namespace is at its quota", 10)
    return unavailable(exc)


class ClaimProtocol:
    def __init__(
        self,
        api: KubeApi,
        view: PoolView,
        *,
        template: Obj,
        cold_start_timeout: float,
        claim_timeout: float = 10.0,
        tasks: Tasks,
    ) -> None:
        self.api = api
        self.view = view
        self.template = template
        self.cold_start_timeout = cold_start_timeout
        self.claim_timeout = claim_timeout
        self.tasks = tasks
        self.abandoned: OrderedDict[str, None] = OrderedDict()

    def collect(self, rs: Obj) -> bool:
        """Delete `rs` if it is an abandoned claim's, landed after all (nobody holds it)."""
        key = ko.labels(rs).get(ko.SESSION_LABEL)
        if key is None or key not in self.abandoned:
            return False
        del self.abandoned[key]
        self.tasks.spawn(self._delete_abandoned(ko.name_of(rs)))
        return True

    async def _delete_abandoned(self, name: str) -> None:
        try:
            await self.api.delete_rs(name)
            log.info("abandoned_claim_deleted", extra={"replicaset": name})
        except ApiException as exc:
            if exc.status != 404:
                log.warning("abandoned_claim_delete_failed", extra={"status": exc.status})
        except BackendUnavailable as exc:  # the Lease holder reaps it as idle instead
            log.warning("abandoned_claim_delete_failed", extra={"error": exc.detail})

    def _abandon(self, key: str) -> None:
        self.abandoned[key] = None
        while len(self.abandoned) > _ABANDONED_KEPT:
            self.abandoned.popitem(last=False)

    async def warm(self, rs: Obj, key: str, *, now: float, expires_at: float) -> Claim | None:
        """Claim the warm ReplicaSet `rs`; None if another claim or a trim got it first."""
        assign = ko.assignment(key, now=now, expires_at=expires_at)
        assign["annotations"][ko.END_REASON] = None  # a recycled member's last session's
        version = rs["metadata"]["resourceVersion"]
        patch = {
            "metadata": {"resourceVersion": version, **assign},
            "spec": ko.pod_protection(True),
        }
        try:
            claimed = await self.api.patch_rs(
                ko.name_of(rs), patch, request_timeout=self.claim_timeout
            )
        except ApiException as exc:
            if exc.status in (404, 409):
                return None
            raise unavailable(exc) from exc
        except BackendUnavailable:
            self._abandon(key)  # the patch may still land: its ReplicaSet goes then
            raise
        claim = await self._when_ready(claimed, warm=True)
        self.tasks.spawn(self._protect(claim.pod.name, key))
        return claim

    async def warm_pod(self, pod: Obj, key: str, *, now: float, expires_at: float) -> Claim | None:
        """Claim the bare warm pod `pod` (POOL_MEMBERS=pods); None if another claim got it.

        The claim is one create: the session's ReplicaSet, named after the pod, whose
        selector (`slot=<pod>`) the pod already matches, so the ReplicaSet controller
        adopts it and replaces it on a kill. Names are unique, so of two claims for one
        pod the second gets 409 and tries the next candidate. The pod is marked the
        session's (and do-not-disrupt) just after the answer, like a warm ReplicaSet's.
        A trim that deletes the pod meanwhile costs this claim a cold start (the
        ReplicaSet starts a pod in its place), never a shared pod.
        """
        assign = ko.assignment(key, now=now, expires_at=expires_at)
        manifest = ko.pool_replicaset(self.template, name=ko.name_of(pod), session=assign)
        try:
            rs = await self.api.create_rs(manifest, request_timeout=self.claim_timeout)
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise create_refused(exc) from exc
        except BackendUnavailable:
            self._abandon(key)  # the create may still land: its ReplicaSet goes then
            raise
        claim = await self._when_ready(rs, warm=True)
        mark = {"labels": assign["labels"], "annotations": {ko.DO_NOT_DISRUPT: "true"}}
        self.tasks.spawn(self._protect(claim.pod.name, key, mark))
        return claim

    async def _protect(self, pod: str, key: str, mark: Obj | None = None) -> None:
        """Mark a claimed warm pod as the session's (`mark`: its metadata patch; else
        do-not-disrupt alone). Not on the claim's path: it would add an API round trip
        to every warm claim. Karpenter checks the mark when it evicts
        (terminator/eviction.go, IsEvictable) and re-checks a consolidation's nodes 15 s
        after choosing them, both long after. Best effort: if it fails, the node may be
        taken from under the session, which then sees a kill (the replacement starts
        from the marked template)."""
        try:
            await self.api.mark_pod(pod, mark or {"annotations": {ko.DO_NOT_DISRUPT: "true"}})
        except ApiException as exc:
            if exc.status != 404:  # 404: killed or ended already
                log.warning(
                    "protect_failed", extra={"session": key[:12], "pod": pod, "status": exc.status}
                )
        except BackendUnavailable as exc:
            log.warning(
                "protect_failed", extra={"session": key[:12], "pod": pod, "error": str(exc)[:200]}
            )

    async def cold(self, key: str, *, now: float, expires_at: float, budget: float) -> Claim:
        """Raises TimeoutError if the pod is not Ready within `budget` seconds."""
        started = time.monotonic()
        assign = ko.assignment(key, now=now, expires_at=expires_at)
        manifest = ko.pool_replicaset(self.template, name=ko.slot_name(), session=assign)
        try:
            created = await self.api.create_rs(manifest, request_timeout=max(0.1, budget))
        except ApiException as exc:
            raise create_refused(exc) from exc
        except BackendUnavailable as exc:
            self._abandon(key)  # the create may still land: its ReplicaSet goes then
            if isinstance(exc.__cause__, urllib3.exceptions.TimeoutError):
                raise TimeoutError from exc  # the claim's time ran out: shed
            raise
        left = budget - (time.monotonic() - started)
        return await self._when_ready(created, warm=False, budget=left)

    async def _when_ready(self, rs: Obj, *, warm: bool, budget: float | None = None) -> Claim:
        """The claim once the ReplicaSet's pod is Ready (at once for a warm one, normally).

        If it is not Ready in time the ReplicaSet is deleted: nobody holds the session yet.
        When the claim's `budget` is what ran out, that is TimeoutError.
        """
        name = ko.name_of(rs)
        wait = self.cold_start_timeout if budget is None else min(budget, self.cold_start_timeout)
        # No time left (the create itself took it all, as on a loaded machine): shed
        # without looking, even if the pod is Ready by now; the claim's bound holds.
        if wait > 0:
            try:
                async with asyncio.timeout(wait):
                    while True:
                        changed = self.view.changed
                        pod = self.view.current_pod(name)
                        if pod is not None and ko.pod_ready(pod):
                            info, pod_info = self.view.info(rs), self.view.pod_info(pod)
                            return Claim(session=info, pod=pod_info, warm=warm)
                        await changed.wait()
            except TimeoutError:
                pass
        pod = self.view.current_pod(name)
        # No pod (the namespace quota), or one no node took (no room, and node autoscaling
        # at its limit or still adding one): capacity, not a failure.
        unplaced = pod is None or not (pod.get("spec") or {}).get("nodeName")
        try:
            await self.api.delete_rs(name)
        except (ApiException, BackendUnavailable) as exc:
            log.warning("claim_cleanup_failed", extra={"replicaset": name, "error": str(exc)[:200]})
        if budget is not None and budget < self.cold_start_timeout:
            raise TimeoutError  # the claim's time ran out first: shed, not an error
        if unplaced:
            raise LimitExceeded(
                ErrorCode.AT_CAPACITY, "no room for another pod right now; try again shortly", 10
            )
        raise BackendUnavailable("the session's pod did not become Ready in time")
