"""clusterAdmins: an access entry for every listed principal but the cluster's creator.

EKS gives the identity that creates the cluster an admin entry of its own
(pulumi-eks always sets bootstrapClusterCreatorAdminPermissions), and a second
entry for it fails with 409 ResourceInUseException.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from infra.identity import CREATOR_TAG, admins_to_grant, principal
from tests.infra.harness import ACCOUNT, CALLER_ARN, DEPLOY_ROLE, StackMocks, StackRun, run_stack

PREVIEW_ROLE = f"arn:aws:iam::{ACCOUNT}:role/pingpod-preview"
ANN = f"arn:aws:iam::{ACCOUNT}:user/Ann"
# The deploy role as an admin would list it, with its path (the caller's
# assumed-role ARN has none).
DEPLOY_ROLE_WITH_PATH = f"arn:aws:iam::{ACCOUNT}:role/ci/pingpod-deploy"
ADMINS = [DEPLOY_ROLE_WITH_PATH, PREVIEW_ROLE, ANN]


def run_as(caller_arn: str, clusters: Mapping[str, Mapping[str, str]] | None = None) -> StackRun:
    mocks = StackMocks("prod", caller_arn=caller_arn, clusters=clusters)
    return run_stack("prod", {"clusterAdmins": ADMINS}, mocks=mocks)


def granted(run: StackRun) -> list[str]:
    """The principals given an access entry, sorted (the map's order is the engine's)."""
    entries = run.one("eks:index:Cluster").inputs.get("accessEntries") or {}
    return sorted(entry["principalArn"] for entry in entries.values())


def test_first_up_leaves_out_the_caller_that_creates_the_cluster() -> None:
    run = run_as(CALLER_ARN)  # the deploy role, assumed; no cluster yet
    assert granted(run) == sorted([PREVIEW_ROLE, ANN])
    cluster = run.one("eks:index:Cluster").inputs
    assert cluster["clusterTags"] == {CREATOR_TAG: DEPLOY_ROLE}
    assert "aws:index/getCallerIdentity:getCallerIdentity" in run.calls


def test_later_run_by_another_admin_keeps_its_own_entry() -> None:
    # CI's deploy role created the cluster; the preview role previews a change.
    preview_session = f"arn:aws:sts::{ACCOUNT}:assumed-role/pingpod-preview/pr-42"
    run = run_as(preview_session, {"pingpod-prod": {CREATOR_TAG: DEPLOY_ROLE}})
    assert granted(run) == sorted([PREVIEW_ROLE, ANN])
    assert run.one("eks:index:Cluster").inputs["clusterTags"] == {CREATOR_TAG: DEPLOY_ROLE}


def test_deploy_role_gets_an_entry_when_someone_else_created_the_cluster() -> None:
    # Ann created the cluster by hand; CI's deploy role takes over.
    run = run_as(CALLER_ARN, {"pingpod-prod": {CREATOR_TAG: ANN}})
    assert granted(run) == sorted([DEPLOY_ROLE_WITH_PATH, PREVIEW_ROLE])


def test_cluster_created_before_the_tag_keeps_every_entry() -> None:
    run = run_as(CALLER_ARN, {"pingpod-prod": {"project": "pingpod"}})
    assert granted(run) == sorted(ADMINS)
    assert "clusterTags" not in run.one("eks:index:Cluster").inputs


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (CALLER_ARN, DEPLOY_ROLE),
        (DEPLOY_ROLE_WITH_PATH, DEPLOY_ROLE),
        (f"arn:aws:iam::{ACCOUNT}:role/a/b/pingpod-deploy", DEPLOY_ROLE),
        (ANN, ANN),
        (f"arn:aws:iam::{ACCOUNT}:user/people/Ann", ANN),
        ("arn:aws-cn:sts::123456789012:assumed-role/r/s", "arn:aws-cn:iam::123456789012:role/r"),
    ],
)
def test_principal_is_account_and_name(arn: str, expected: str) -> None:
    found = principal(arn)
    assert found is not None
    assert found.arn == expected


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:iam::{ACCOUNT}:root",
        f"arn:aws:sts::{ACCOUNT}:federated-user/bob",
        "not an arn",
    ],
)
def test_other_identities_are_no_principal(arn: str) -> None:
    assert principal(arn) is None


def test_same_name_in_another_account_is_another_principal() -> None:
    creator = principal(CALLER_ARN)
    other = "arn:aws:iam::210987654321:role/pingpod-deploy"
    assert admins_to_grant([other, DEPLOY_ROLE], creator) == (other,)
    assert admins_to_grant([other, DEPLOY_ROLE], None) == (other, DEPLOY_ROLE)
