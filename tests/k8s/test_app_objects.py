"""The App component's Kubernetes objects, rendered from the Pulumi program
under mocks, are accepted by the real API server (server-side dry run: schema,
defaulting, validation and admission), and so are the pods they make: the
provisioner's (from the Deployment) and a session's echo pod (the template in
a pool ReplicaSet, built as the provisioner builds it), under the namespace's
"restricted" Pod Security level."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from scripts.controlplane import ControlPlane
from services.provisioner.backends.kubernetes import objects as ko
from tests.infra.render import echo_template, render_app_objects
from tests.support.polling import wait_for

pytestmark = pytest.mark.k8s

# Custom resources whose definitions this API server does not have.
NOT_CHECKED = {
    "TargetGroupBinding": "its CRD (elbv2.k8s.aws) comes with the AWS Load Balancer "
    "Controller chart, which needs AWS; its schema is checked in tests/infra",
}


@pytest.fixture(scope="module", params=["local", "prod"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render_app_objects(request.param)


@pytest.fixture(scope="module")
def app_namespace(control_plane: ControlPlane, rendered: list[dict[str, Any]]) -> Iterator[str]:
    """The program's Namespace, created for real so namespaced objects can be dry-run in it."""
    namespace = rendered[0]
    assert namespace["kind"] == "Namespace"
    name = namespace["metadata"]["name"]
    with control_plane.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(namespace)  # type: ignore[arg-type]
        yield name
        core.delete_namespace(name)

        def gone() -> bool:
            try:
                core.read_namespace(name)
            except ApiException as exc:
                return exc.status == 404
            return False

        wait_for(f"namespace {name} to be deleted", gone, timeout=60)


def dry_run(dyn: dynamic.DynamicClient, obj: dict[str, Any], namespace: str) -> None:
    resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        resource.create(body=obj, namespace=namespace, dry_run="All")
    except ApiException as exc:
        pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} refused: {exc.status} {exc.body}")


def test_every_object_is_accepted(
    api: client.ApiClient, rendered: list[dict[str, Any]], app_namespace: str
) -> None:
    dyn = dynamic.DynamicClient(api)
    checked, skipped = [], []
    for obj in rendered[1:]:
        if obj["kind"] in NOT_CHECKED:
            with pytest.raises(ResourceNotFoundError):
                dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            skipped.append(obj["kind"])
            continue
        dry_run(dyn, obj, app_namespace)
        checked.append(obj["kind"])
    for kind in ("ResourceQuota", "Role", "RoleBinding", "Deployment", "NetworkPolicy"):
        assert kind in checked
    assert set(skipped) <= set(NOT_CHECKED)


def test_pods_pass_restricted_pod_security(
    api: client.ApiClient, rendered: list[dict[str, Any]], app_namespace: str
) -> None:
    namespace = next(o for o in rendered if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    dyn = dynamic.DynamicClient(api)
    # Admission looks the pod's ServiceAccount up: that one is created for real.
    account = next(o for o in rendered if o["kind"] == "ServiceAccount")
    dyn.resources.get(api_version="v1", kind="ServiceAccount").create(
        body=account, namespace=app_namespace
    )
    deployment = next(o for o in rendered if o["kind"] == "Deployment")
    pool_member = ko.pool_replicaset(echo_template(rendered), name=ko.slot_name())
    for owner in (deployment, pool_member):
        template = owner["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{owner['metadata']['name']}-check", **template["metadata"]},
            "spec": template["spec"],
        }
        # Pod Security admission enforces on pods (it only warns on their owners).
        dry_run(dyn, pod, app_namespace)
    dry_run(dyn, pool_member, app_namespace)
    # The check has teeth: a pod without the restricted settings is refused here.
    bare = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bare"},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/x:1"}]},
    }
    with pytest.raises(ApiException) as refused:
        dyn.resources.get(api_version="v1", kind="Pod").create(
            body=bare, namespace=app_namespace, dry_run="All"
        )
    assert refused.value.status == 403
