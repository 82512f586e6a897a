"""The GitHub workflows (actionlint checks their syntax; this checks their intent)."""

from __future__ import annotations

from typing import Any

import yaml

from tests.infra.harness import REPO

WORKFLOWS = REPO / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return workflow["jobs"][job]["steps"]


def uses(workflow: dict[str, Any], job: str, action: str) -> dict[str, Any]:
    found = [s for s in steps(workflow, job) if str(s.get("uses", "")).startswith(f"{action}@")]
    assert len(found) == 1, action
    return found[0]


def test_tests_run_once_per_change() -> None:
    workflow = load("test.yml")
    # Pull requests here; main through deploy.yml's call. A push trigger too
    # would run the suite twice for every push to main.
    assert set(workflow["on"]) == {"pull_request", "workflow_call", "workflow_dispatch"}
    runs = [s.get("run") for s in steps(workflow, "test")]
    assert "make test" in runs
    for action in ("actions/setup-python", "actions/setup-go", "actions/setup-node"):
        uses(workflow, "test", action)


def test_preview_on_pull_requests_with_oidc_and_a_comment() -> None:
    workflow = load("preview.yml")
    assert set(workflow["on"]) == {"pull_request"}
    assert workflow["permissions"]["id-token"] == "write"
    assert workflow["permissions"]["pull-requests"] == "write"
    credentials = uses(workflow, "preview", "aws-actions/configure-aws-credentials")["with"]
    assert credentials["role-to-assume"].startswith("${{ vars.")
    assert "aws-access-key-id" not in credentials
    pulumi = uses(workflow, "preview", "pulumi/actions")["with"]
    assert pulumi["command"] == "preview"
    assert pulumi["stack-name"] == "prod"
    assert pulumi["comment-on-pr"] is True
    assert pulumi["diff"] is True
    # No image builds on preview (buildOnPreview false): a builder, no emulation.
    uses(workflow, "preview", "docker/setup-buildx-action")
    assert not [s for s in steps(workflow, "preview") if "setup-qemu" in str(s.get("uses"))]
    assert "aws --version" in [s.get("run") for s in steps(workflow, "preview")]


def test_deploy_on_main_behind_the_production_environment() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    # The only run of the tests for a push to main.
    assert workflow["jobs"]["test"]["uses"] == "./.github/workflows/test.yml"
    job = workflow["jobs"]["deploy"]
    assert job["needs"] == "test"
    assert job["environment"] == "production"
    assert job["permissions"]["id-token"] == "write"
    pulumi = uses(workflow, "deploy", "pulumi/actions")["with"]
    assert (pulumi["command"], pulumi["stack-name"]) == ("up", "prod")
    uses(workflow, "deploy", "aws-actions/configure-aws-credentials")
    uses(workflow, "deploy", "docker/setup-qemu-action")  # arm64 images on x86
    assert "aws --version" in [s.get("run") for s in steps(workflow, "deploy")]
