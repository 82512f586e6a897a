"""The local (app-only) stack: the App component alone, on the current kubeconfig."""

from __future__ import annotations

import yaml

from tests.infra.harness import REPO, StackRun, run_stack
from tests.infra.render import render_app_objects

LOCAL = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]


def test_no_aws_at_all(local: StackRun) -> None:
    packages = {r.type.split(":")[0] for r in local.resources}
    assert packages == {"pingpod", "kubernetes"}
    assert [r.type for r in local.resources if r.type.startswith("pingpod:")] == ["pingpod:app:App"]
    assert not local.calls, "the local program must call no provider function"


def test_current_context_by_default(local: StackRun) -> None:
    assert not local.of_type("pulumi:providers:kubernetes")
    for r in local.kubernetes():
        assert not r.provider, r.provider  # the default provider: the current context


def test_named_context_gets_its_own_provider() -> None:
    run = run_stack("local", {"kubeContext": "kind-pingpod"})
    provider = run.one("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "kind-pingpod"
    assert provider.parent_type == "pingpod:app:App"
    for r in run.kubernetes():
        assert r.provider and "pingpod-k8s" in r.provider, r.name


def test_outputs_tell_how_to_reach_it(local: StackRun) -> None:
    assert local.outputs["url"] == "http://localhost:8000"
    assert (
        local.outputs["portForward"] == "kubectl -n pingpod port-forward svc/provisioner 8000:8000"
    )


def test_images_from_config(local: StackRun) -> None:
    assert local.outputs["echoImage"] == LOCAL["pingpod:echoImage"]
    assert local.outputs["provisionerImage"] == LOCAL["pingpod:provisionerImage"]
    assert not local.secret_outputs


def test_render_app_objects_for_other_suites() -> None:
    objects = render_app_objects()
    kinds = [o["kind"] for o in objects]
    assert kinds[0] == "Namespace"
    assert "TargetGroupBinding" not in kinds
    assert {"Role", "RoleBinding", "ServiceAccount", "Deployment", "ConfigMap"} <= set(kinds)
    for obj in objects:
        assert obj["apiVersion"] and obj["metadata"]["name"]
        # Plain JSON: ints stay ints, no Pulumi wrappers.
        assert "4dabf18193072939515e22adb298388d" not in repr(obj)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert isinstance(deployment["spec"]["replicas"], int)
