"""Every Kubernetes object the program declares, against the 1.36 schemas and checkov.

The objects come from the mocks' recorded inputs (``tests/infra/render.py``),
plus one echo ReplicaSet built from the published pod template the way the
provisioner builds it, so the pods that carry sessions are checked too.
Karpenter's NodePool and EC2NodeClass are checked against the parts of their
CRDs this program uses (``tests/infra/karpenter_schemas.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from tests.infra.harness import REPO, StackRun, run_stack
from tests.infra.karpenter_schemas import NODE_POOL_SCHEMA
from tests.infra.karpenter_schemas import SCHEMAS as KARPENTER_SCHEMAS
from tests.infra.render import app_objects, to_api

KUBERNETES_VERSION = "1.36"
KARPENTER = "pingpod:karpenter:Karpenter"

# The kinds of each stack's objects (the App's, plus an echo ReplicaSet as the
# provisioner makes it). Only prod binds the Service to an ALB target group.
_APP_KINDS = (
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "Namespace",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "ReplicaSet",
    "ResourceQuota",
    "Role",
    "RoleBinding",
    "Service",
    "ServiceAccount",
)
KINDS: dict[str, tuple[str, ...]] = {
    "prod": (*_APP_KINDS, "TargetGroupBinding"),
    "local": _APP_KINDS,
}

# Kinds kubernetes-validate has no schema for, and what checks them instead.
SCHEMA_SKIPPED = {
    "TargetGroupBinding": (
        "a CRD of the AWS Load Balancer Controller (elbv2.k8s.aws/v1beta1); "
        "kubernetes-validate ships built-in kinds only. Checked against "
        "TARGET_GROUP_BINDING_SCHEMA, the fields this program sets as the CRD defines them."
    ),
}

# The part of the v1beta1 TargetGroupBinding CRD schema that this program uses.
TARGET_GROUP_BINDING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "elbv2.k8s.aws/v1beta1"},
        "kind": {"const": "TargetGroupBinding"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
        },
        "spec": {
            "type": "object",
            "required": ["serviceRef", "targetGroupARN"],
            "additionalProperties": False,
            "properties": {
                "serviceRef": {
                    "type": "object",
                    "required": ["name", "port"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "port": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                    },
                },
                "targetGroupARN": {"type": "string", "minLength": 1},
                "targetType": {"enum": ["instance", "ip"]},
                "networking": {"type": "object"},
                "nodeSelector": {"type": "object"},
                "ipAddressType": {"enum": ["ipv4", "ipv6"]},
            },
        },
    },
}

# checkov checks that fail by design, per stack, with the reason. The test
# also fails when a listed check stops failing, so this list cannot go stale.
CHECKOV_SKIPS: dict[str, dict[str, str]] = {
    "prod": {
        "CKV_K8S_38": (
            "Service account token mounted: the provisioner is the one pod that calls the "
            "Kubernetes API (ReplicaSets, Pods, Leases); every echo pod has "
            "automountServiceAccountToken: false."
        ),
    },
    "local": {
        "CKV_K8S_38": "As in prod: the provisioner needs its token; echo pods mount none.",
        "CKV_K8S_43": (
            "Image not pinned by digest: the local stack deploys images the developer built "
            "and loaded into a local cluster by tag (Pulumi.local.yaml). The prod stack uses "
            "the digest-pinned refs of the pushed images and passes this check."
        ),
        "CKV_K8S_15": (
            "imagePullPolicy not Always: a tag-named image loaded into a local cluster "
            "(kind load, minikube image load) exists on no registry, so Always would fail "
            "to start it. With prod's digest refs checkov accepts IfNotPresent."
        ),
    },
}


def checkov_path() -> Path:
    configured = os.environ.get("PINGPOD_CHECKOV")
    path = Path(configured) if configured else REPO / ".venv-checkov" / "bin" / "checkov"
    if not path.is_file():
        pytest.skip(f"checkov not installed at {path}: run `make test-infra`, which installs it")
    return path


def test_builtin_kinds_valid_for_kubernetes_1_36(objects: list[dict[str, Any]]) -> None:
    skipped: list[str] = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except SchemaNotFoundError:
            skipped.append(obj["kind"])
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}"
            )
    assert set(skipped) <= set(SCHEMA_SKIPPED), skipped


def test_each_stack_declares_exactly_its_kinds(
    stack_run: StackRun, objects: list[dict[str, Any]]
) -> None:
    """What the checks here cover, per stack: a kind gone missing fails, not skips."""
    assert sorted({obj["kind"] for obj in objects}) == sorted(KINDS[stack_run.stack])


def test_the_target_group_binding_matches_its_crd(prod: StackRun) -> None:
    """Only prod has one: the ALB's target group is an AWS resource."""
    (binding,) = [obj for obj in app_objects(prod) if obj["kind"] == "TargetGroupBinding"]
    jsonschema.validate(binding, TARGET_GROUP_BINDING_SCHEMA)
    # The schema has teeth: a field the CRD does not define is refused.
    stray = {**binding, "spec": {**binding["spec"], "targetGroupArn": "typo"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(stray, TARGET_GROUP_BINDING_SCHEMA)


@pytest.mark.parametrize("profile", ["standard", "lean"])
def test_karpenter_resources_match_their_crds(profile: str) -> None:
    """The NodePool and EC2NodeClass (children of the Karpenter component, not of the App)."""
    run = run_stack("prod", {"profile": profile})
    objects = {
        obj["kind"]: obj
        for obj in (to_api(r.inputs) for r in run.kubernetes() if r.parent_type == KARPENTER)
    }
    assert set(objects) == set(KARPENTER_SCHEMAS)
    for kind, obj in objects.items():
        jsonschema.validate(obj, KARPENTER_SCHEMAS[kind])
    # The schemas have teeth: a field the CRD lacks, or a policy it does not know, is refused.
    pool = objects["NodePool"]
    for broken in (
        {**pool, "spec": {**pool["spec"], "ttlSecondsAfterEmpty": 30}},
        {
            **pool,
            "spec": {**pool["spec"], "disruption": {"consolidationPolicy": "WhenUnderutilized"}},
        },
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, NODE_POOL_SCHEMA)


def test_checkov_finds_nothing_beyond_the_listed_skips(
    stack_run: StackRun, objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    checkov = checkov_path()
    for index, obj in enumerate(objects):
        name = f"{index:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (tmp_path / name).write_text(yaml.safe_dump(obj, sort_keys=False))
    # --skip-download: no Prisma Cloud call; the proxy makes any other call fail
    # at once instead of leaving the machine.
    env = {
        **os.environ,
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
        "BC_SKIP_MAPPING": "TRUE",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "--compact",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if not result.stdout.strip():
        pytest.fail(f"checkov printed nothing (rc {result.returncode}): {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = {
        (check["check_id"], check["resource"])
        for r in reports
        for check in r.get("results", {}).get("failed_checks", [])
    }
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 100, "checkov ran no checks"
    skips = CHECKOV_SKIPS[stack_run.stack]
    unexpected = sorted(f for f in failed if f[0] not in skips)
    assert not unexpected, f"checkov failures: {unexpected}"
    stale = sorted(set(skips) - {check_id for check_id, _ in failed})
    assert not stale, f"listed skips that no longer fail; remove them: {stale}"
