"""What the App's Kubernetes objects share: a name prefix, the namespace, parent, provider.

``infra.app`` makes one :class:`Scope` and hands it to the modules that declare
its objects (``infra.provisioner``, ``infra.policies``), so every object gets
the same metadata and options however it is split across modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.workload import PART_OF


@dataclass(frozen=True)
class Scope:
    """What the App's objects share: a resource-name prefix, the namespace, parent, provider."""

    prefix: str
    namespace: pulumi.Output[str]
    parent: pulumi.Resource
    provider: k8s.Provider | None

    def meta(
        self, name: str, labels: Mapping[str, str] | None = None
    ) -> k8s.meta.v1.ObjectMetaArgs:
        return k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=self.namespace, labels={**PART_OF, **(labels or {})}
        )

    def opts(self, *depends_on: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self.parent, provider=self.provider, depends_on=list(depends_on) or None
        )
