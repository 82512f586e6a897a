"""The backend contract (tests/support/backend_contract.py) for the Kubernetes backend,
in this process against the test control plane, with the credentials of the
provisioner's ServiceAccount (the Role from infra/rbac.py); plus the
Kubernetes-only failure paths of the same operations."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from infra.rbac import SERVICE_ACCOUNT_NAME
from scripts.controlplane import ControlPlane
from services.provisioner.backends.events import EventKind
from services.provisioner.backends.kubernetes import KubernetesDriver
from services.provisioner.backends.kubernetes import objects as ko
from services.provisioner.backends.pooled import PooledBackend
from services.provisioner.errors import SessionNotFound
from tests.support.backend_contract import BackendContract, Backends, claim, next_event, warm
from tests.support.polling import eventually

from .rig import ECHO_TEMPLATE, POOL_MEMBERS, grant_provisioner_role


async def kubernetes_backends(
    control_plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    **settings: Any,
) -> AsyncIterator[Backends]:
    grant_provisioner_role(api, namespace, settings.get("pool_members", "replicasets"))
    token = control_plane.service_account_token(namespace, SERVICE_ACCOUNT_NAME, create=True)
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig_for_token(token, namespace)))
    template = tmp_path / "echo-pod.json"
    template.write_text(json.dumps(ECHO_TEMPLATE))
    made = Backends(
        settings={
            "backend": "kubernetes",
            "namespace": namespace,
            "echo_pod_template": template,
            "pod_name": "contract",
            "lease_duration": 3.0,
            **settings,
        }
    )
    yield made
    await made.close()


@pytest.fixture(params=POOL_MEMBERS)
async def backends(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Backends]:
    """In both POOL_MEMBERS modes: warm ReplicaSets, and bare warm pods."""
    async for made in kubernetes_backends(
        control_plane, api, namespace, tmp_path, monkeypatch, pool_members=request.param
    ):
        yield made


class TestKubernetesBackend(BackendContract):
    pass


class TestKubernetesBackendRecycling(BackendContract):
    """The same contract with `SESSION_END=recycle`: an ended session's ReplicaSet is
    kept, its pods deleted, and it is warm again with a new pod."""

    @pytest.fixture
    async def backends(
        self,
        control_plane: ControlPlane,
        api: client.ApiClient,
        namespace: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> AsyncIterator[Backends]:
        async for made in kubernetes_backends(
            control_plane,
            api,
            namespace,
            tmp_path,
            monkeypatch,
            session_end="recycle",
            pool_members="replicasets",
        ):
            yield made

    async def test_an_ended_session_s_member_is_warm_again_without_its_pod(
        self, backends: Backends, api: client.ApiClient, namespace: str
    ) -> None:
        # No refill, so the recycled member is the pool's only one and is not trimmed.
        backend = await backends.start(pool_size=1, pool_headroom=0.0)
        assert isinstance(backend, PooledBackend)
        driver = backend.driver
        assert isinstance(driver, KubernetesDriver)
        await warm(backend)
        key = await claim(backend, backends.clock)
        info = await backend.get(key)
        slot = driver.view.find(key)
        assert info.pod is not None and slot is not None
        old_pod, name = info.pod.name, ko.name_of(slot)
        await backend.release(key)
        meta = client.AppsV1Api(api).read_namespaced_replica_set(name, namespace).metadata
        assert meta is not None
        labels, annotations = meta.labels or {}, meta.annotations or {}
        assert labels[ko.STATE_LABEL] == ko.WARM and ko.SESSION_LABEL not in labels
        assert annotations[ko.RETIRED] == old_pod and ko.EXPIRES_AT not in annotations
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="slot=" + name)
        metas = [p.metadata for p in pods.items if p.metadata is not None]
        assert all(m.deletion_timestamp for m in metas if m.name == old_pod)  # deleted or going
        with pytest.raises(SessionNotFound):
            await backend.get(key)
        await eventually(
            lambda: (
                (pod := driver.view.current_pod(name)) is not None and ko.name_of(pod) != old_pod
            ),
            "a new pod in the recycled member",
        )


async def test_a_failed_replacement_count_does_not_undo_a_kill(
    backends: Backends, caplog: pytest.LogCaptureFixture
) -> None:
    """The pod is deleted, then the count annotation fails with a 5xx: still a 202."""
    backend = await backends.start()
    assert isinstance(backend, PooledBackend)
    driver = backend.driver
    assert isinstance(driver, KubernetesDriver)
    await warm(backend)
    key = await claim(backend, backends.clock)
    patch = driver.api.apps.patch_namespaced_replica_set

    def failing_count(name: str, namespace: str, body: Any, **kwargs: Any) -> Any:
        if ko.REPLACEMENTS in body.get("metadata", {}).get("annotations", {}):
            raise ApiException(status=500, reason="Internal Server Error")
        return patch(name, namespace, body, **kwargs)

    driver.api.apps.patch_namespaced_replica_set = failing_count  # type: ignore[method-assign]
    async with backend.subscribe(key) as events:
        with caplog.at_level(logging.WARNING):
            killed = await backend.kill(key)
        failed = [r for r in caplog.records if r.getMessage() == "annotation_failed"]
        assert [r.__dict__["annotations"] for r in failed] == [[ko.REPLACEMENTS]]
        gone = await next_event(events)
        assert (gone.kind, gone.pod) == (EventKind.POD_KILLED, killed.name)
        assert (await next_event(events)).kind == EventKind.POD_REPLACED
        assert (await next_event(events)).kind == EventKind.POD_READY
    assert (await backend.get(key)).replacements == 0  # the count is what failed
