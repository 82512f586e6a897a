"""Claims against agent-sandbox's warm pool, as its users make them (for `bench.peers`).

A visitor's claim is a SandboxClaim created with a ServiceAccount token of the
visitors' own (not the admin's, so API Priority and Fairness puts it where a
real client's would be), watched until its `Ready` condition is True, then
deleted; the garbage collector removes its Sandbox and pod. Times are this
machine's clock when the POST was sent and when the watch line arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import ssl
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.peerpools import Counted, Load, count
from bench.procs import open_loop
from scripts.controlplane import ControlPlane, ControlPlaneError
from scripts.controlplane import agentsandbox as sandbox
from scripts.controlplane.apply import apply
from scripts.controlplane.loopback import LOOPBACK, Endpoint

VISITOR = "peers-visitor"
POOL = "echo"


@dataclass
class Claim:
    """One claim's times (perf_counter seconds) and outcome."""

    started: float
    bound: float | None = None
    ready: float | None = None
    warm: bool = False
    outcome: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)


def visitor_role(namespace: str) -> list[dict[str, Any]]:
    """What a visitor's client may do: make, watch and end claims, nothing else."""
    rbac = "rbac.authorization.k8s.io/v1"
    meta = {"name": VISITOR, "namespace": namespace}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": ["extensions.agents.x-k8s.io"],
                    "resources": ["sandboxclaims"],
                    "verbs": ["create", "delete", "get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": VISITOR},
            "subjects": [{"kind": "ServiceAccount", "name": VISITOR, "namespace": namespace}],
        },
    ]


class SandboxPool:
    """A SandboxTemplate and a SandboxWarmPool of ``size`` in ``namespace``, and the
    visitors' client for it. Own requests (reading the pool's status) are counted in
    ``counted`` so that the per-cycle API figures can leave them out."""

    def __init__(
        self, cp: ControlPlane, namespace: str, controller: sandbox.AgentSandbox, counted: Counted
    ) -> None:
        self.cp = cp
        self.controller = controller
        self.namespace = namespace
        self.counted = counted
        self.claim_timeout = 30.0
        self._names = itertools.count()
        self._prefix = uuid.uuid4().hex[:6]
        self._token = ""

    def create(self, size: int, pod_template: dict[str, Any]) -> None:
        apply(
            self.cp,
            [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
                *visitor_role(self.namespace),
                sandbox.template(self.namespace, POOL, pod_template),
                sandbox.warm_pool(self.namespace, POOL, POOL, size),
            ],
        )
        self._token = self.cp.service_account_token(self.namespace, VISITOR)
        # The Role reaches the authorizer's cache a moment after it is written.
        port = self.cp.ports["kube-apiserver"]
        visitor = Endpoint(LOOPBACK, port, ca=self.cp.ca_file, token=self._token)
        deadline = time.monotonic() + 30
        while visitor.raw("GET", sandbox.claims_path(self.namespace))[0] != 200:
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"the visitors' Role never took effect in {self.namespace}")
            time.sleep(0.1)

    def warm(self) -> int:
        """Ready members of the warm pool, per its status."""
        self.counted["GET sandboxwarmpools"] += 1
        pool = self.cp.admin().json("GET", sandbox.warm_pool_path(self.namespace, POOL))
        return int((pool.get("status") or {}).get("readyReplicas") or 0)

    def leftovers(self, size: int) -> str:
        core = f"/api/v1/namespaces/{self.namespace}"
        group = f"/apis/{sandbox.CORE_GROUP}/namespaces/{self.namespace}"
        pods = count(self.cp, f"{core}/pods", self.counted)
        boxes = count(self.cp, f"{group}/sandboxes", self.counted)
        claims = count(self.cp, sandbox.claims_path(self.namespace), self.counted)
        if pods <= size and boxes <= size and not claims:
            return ""
        return f"pods={pods} sandboxes={boxes} sandboxclaims={claims}"

    def controller_pid(self) -> int:
        return self.controller.pid()

    def _client(self) -> httpx.AsyncClient:
        tls = ssl.create_default_context(cafile=str(self.cp.ca_file))
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200)
        return httpx.AsyncClient(
            base_url=self.cp.server,
            verify=tls,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=httpx.Timeout(30.0),
            limits=limits,
        )

    async def claims(self, rate: float, seconds: float) -> Load:
        """Claims at ``rate`` for ``seconds`` (open loop), each deleted once Ready or
        after ``claim_timeout`` seconds."""
        claims: dict[str, Claim] = {}
        path = sandbox.claims_path(self.namespace)
        async with self._client() as http:
            listed = (await http.get(path)).json()
            watcher = asyncio.create_task(
                self._watch(http, path, listed["metadata"]["resourceVersion"], claims)
            )

            async def one() -> None:
                name = f"c-{self._prefix}-{next(self._names)}"
                claim = claims[name] = Claim(started=time.perf_counter())
                try:
                    answer = await http.post(path, json=sandbox.claim(self.namespace, name, POOL))
                except httpx.HTTPError as exc:
                    claim.outcome = type(exc).__name__
                    return
                if answer.status_code != 201:
                    claim.outcome = str(answer.status_code)
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(claim.done.wait(), self.claim_timeout)
                if claim.ready is None:
                    claim.outcome = "not Ready in time"
                with contextlib.suppress(httpx.HTTPError):
                    await http.delete(f"{path}/{name}")

            try:
                await open_loop(rate, seconds, one)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        return _load(claims.values())

    async def _watch(
        self, http: httpx.AsyncClient, path: str, version: str, claims: dict[str, Claim]
    ) -> None:
        """Follow the claims: bound and Ready times as the watch lines arrive."""
        while True:
            query = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true"}
            with contextlib.suppress(httpx.HTTPError):
                # No read timeout: a quiet watch is not a dead one.
                timeout = httpx.Timeout(30.0, read=None)
                async with http.stream("GET", path, params=query, timeout=timeout) as stream:
                    async for line in stream.aiter_lines():
                        event = json.loads(line)
                        if event["type"] == "ERROR":
                            # Expired (410): from now on; the ADDED lines repeat all there is.
                            version = ""
                            break
                        obj = event["object"]
                        version = obj["metadata"].get("resourceVersion", version)
                        claim = claims.get(obj["metadata"].get("name", ""))
                        if claim is not None and event["type"] in ("ADDED", "MODIFIED"):
                            _observe(claim, obj, obj["metadata"]["name"])
            await asyncio.sleep(0.1)  # then watch again, from the last version seen


def _observe(claim: Claim, obj: dict[str, Any], name: str) -> None:
    now = time.perf_counter()
    bound = sandbox.bound_sandbox(obj)
    if bound and claim.bound is None:
        claim.bound = now
        # A cold start makes a Sandbox named after the claim; a warm one keeps its pool name.
        claim.warm = bound != name
    if sandbox.is_ready(obj) and claim.ready is None:
        claim.ready = now
        claim.bound = claim.bound or now
        claim.done.set()


def _load(claims: Iterable[Claim]) -> Load:
    load = Load()
    for claim in claims:
        if claim.ready is not None and claim.bound is not None:
            load.answered.append((claim.bound - claim.started) * 1000)
            load.ready.append((claim.ready - claim.started) * 1000)
            load.outcomes["warm" if claim.warm else "cold"] += 1
        else:
            load.outcomes[claim.outcome or "not Ready in time"] += 1
    return load
