"""The backend contract (tests/services/contract.py) for the Kubernetes backend,
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
from services.provisioner.backends import kube_objects as ko
from services.provisioner.backends.events import EventKind
from services.provisioner.backends.kubernetes import KubernetesDriver
from services.provisioner.backends.pooled import PooledBackend
from tests.services.contract import BackendContract, Backends, claim, next_event, warm

from .rig import ECHO_TEMPLATE, grant_provisioner_role


@pytest.fixture
async def backends(
    control_plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Backends]:
    grant_provisioner_role(api, namespace)
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
        }
    )
    yield made
    await made.close()


class TestKubernetesBackend(BackendContract):
    pass


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
