"""Who created the EKS cluster, so ``clusterAdmins`` does not grant that identity twice.

pulumi-eks creates every cluster with ``bootstrapClusterCreatorAdminPermissions``
on: EKS gives the identity that creates the cluster an admin access entry of
its own. Declaring another entry for that principal fails with 409
``ResourceInUseException`` ("the specified access entry resource is already in
use"), so the cluster's creator is left out of the entries declared for
``clusterAdmins``.

The creator is the identity running ``pulumi up`` only while the cluster does
not exist yet. It is recorded in a tag on the cluster and read back on later
runs, so a run by someone else (the CI preview role, a teammate) does not drop
that person's own entry, and the creator's entry stays left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import pulumi
import pulumi_aws as aws

CREATOR_TAG: Final = "pingpod/cluster-creator"

# arn:aws:iam::123456789012:role/some/path/name and .../user/path/name
_IAM_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):"
    r"(?P<kind>role|user)/(?:[^/]+/)*(?P<name>[^/]+)$"
)
# arn:aws:sts::123456789012:assumed-role/name/session: what
# sts:GetCallerIdentity returns for a role, without the role's path.
_ASSUMED_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>[0-9]{12}):"
    r"assumed-role/(?P<name>[^/]+)/[^/]+$"
)


@dataclass(frozen=True)
class Principal:
    """An IAM role or user, named by account and name.

    The path is dropped on purpose: an assumed-role ARN does not carry it, and
    IAM names are unique within an account whatever their path, so account and
    name alone say whether two ARNs are the same principal.
    """

    partition: str
    account: str
    kind: Literal["role", "user"]
    name: str

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:{self.kind}/{self.name}"


def principal(arn: str) -> Principal | None:
    """The IAM role or user behind ``arn``; None for anything else (root, federated users)."""
    if match := _IAM_ARN.match(arn):
        kind: Literal["role", "user"] = "role" if match["kind"] == "role" else "user"
        return Principal(match["partition"], match["account"], kind, match["name"])
    if match := _ASSUMED_ROLE_ARN.match(arn):
        return Principal(match["partition"], match["account"], "role", match["name"])
    return None


def admins_to_grant(admins: Sequence[str], creator: Principal | None) -> tuple[str, ...]:
    """``admins`` without the cluster's creator, whom EKS already made admin."""
    return tuple(arn for arn in admins if creator is None or principal(arn) != creator)


def cluster_creator(cluster_name: str) -> Principal | None:
    """Who created (or, on this run, will create) the EKS cluster ``cluster_name``.

    A blocking lookup, not an Output: pulumi-eks takes its access entries as a
    plain map, so which ones to declare must be known before the cluster is
    declared. Invokes run on preview as on update, so a preview lists the same
    entries the update will create. ``None`` for a cluster created without the
    tag (before this lookup existed): its entries then stay as they were.
    """
    if cluster_name not in (aws.eks.get_clusters().names or ()):
        # This run creates the cluster, so whoever runs it becomes EKS's admin.
        return principal(aws.get_caller_identity().arn)
    tags = aws.eks.get_cluster(name=cluster_name).tags or {}
    recorded = tags.get(CREATOR_TAG)
    if recorded is None:
        pulumi.log.info(
            f"cluster {cluster_name} has no {CREATOR_TAG} tag: every clusterAdmins entry is kept"
        )
        return None
    return principal(recorded)
