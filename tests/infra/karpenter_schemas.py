"""The parts of Karpenter's v1 CRD schemas that this program uses, as JSON Schema.

kubernetes-validate ships built-in kinds only. These are the fields
``infra/session_nodes.py`` sets, with the types, patterns and enums of the
``karpenter.sh/v1`` NodePool and ``karpenter.k8s.aws/v1`` EC2NodeClass CRDs of
the pinned chart version; a field the CRD does not define is refused
(``additionalProperties: false``), as the API server's structural schema would
prune or refuse it. The CEL rules the CRDs add are written out where they apply
(one of role and instanceProfile; an alias alone in amiSelectorTerms).
"""

from __future__ import annotations

from typing import Any, Final

DURATION: Final = {"type": "string", "pattern": r"^(([0-9]+(s|m|h))+|Never)$"}
# A qualified name (label or taint key): an optional DNS-subdomain prefix and '/', a name.
QUALIFIED_NAME: Final = {
    "type": "string",
    "maxLength": 316,
    "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(\/))?"
    r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$",
}
LABEL_VALUE: Final = {
    "type": "string",
    "maxLength": 63,
    "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": required or [],
    }


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _object(
        {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            # Cluster-scoped: a name, no namespace.
            "metadata": {
                "type": "object",
                "required": ["name"],
                "not": {"required": ["namespace"]},
                "properties": {"name": {"type": "string"}, "labels": {"type": "object"}},
            },
            "spec": spec,
        },
        ["apiVersion", "kind", "metadata", "spec"],
    )


NODE_POOL_SCHEMA: Final = _resource(
    "karpenter.sh/v1",
    "NodePool",
    _object(
        {
            "template": _object(
                {
                    "spec": _object(
                        {
                            "nodeClassRef": _object(
                                {
                                    "group": {"type": "string", "pattern": r"^[^/]*$"},
                                    "kind": {"type": "string"},
                                    "name": {"type": "string"},
                                },
                                ["group", "kind", "name"],
                            ),
                            "requirements": {
                                "type": "array",
                                "maxItems": 100,
                                "items": _object(
                                    {
                                        "key": QUALIFIED_NAME,
                                        "operator": {
                                            "enum": ["In", "NotIn", "Exists", "DoesNotExist"]
                                        },
                                        "values": {"type": "array", "items": LABEL_VALUE},
                                    },
                                    ["key", "operator"],
                                ),
                            },
                            "taints": {
                                "type": "array",
                                "items": _object(
                                    {
                                        "key": QUALIFIED_NAME,
                                        "value": QUALIFIED_NAME,
                                        "effect": {
                                            "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]
                                        },
                                    },
                                    ["key", "effect"],
                                ),
                            },
                            "expireAfter": DURATION,
                        },
                        ["nodeClassRef", "requirements"],
                    )
                },
                ["spec"],
            ),
            "limits": _object({"cpu": {"type": "string", "pattern": r"^[0-9]+$"}}),
            "disruption": _object(
                {
                    "consolidationPolicy": {
                        "enum": ["WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"]
                    },
                    "consolidateAfter": DURATION,
                    "budgets": {
                        "type": "array",
                        "maxItems": 50,
                        "items": _object(
                            {
                                "nodes": {
                                    "type": "string",
                                    "pattern": r"^((100|[0-9]{1,2})%|[0-9]+)$",
                                }
                            },
                            ["nodes"],
                        ),
                    },
                }
            ),
        },
        ["template"],
    ),
)

EC2_NODE_CLASS_SCHEMA: Final = _resource(
    "karpenter.k8s.aws/v1",
    "EC2NodeClass",
    _object(
        {
            # One of role and instanceProfile: this program uses role.
            "role": {"type": "string", "minLength": 1},
            "amiSelectorTerms": {
                "type": "array",
                # An alias must be the only term.
                "minItems": 1,
                "maxItems": 1,
                "items": _object(
                    {
                        "alias": {
                            "type": "string",
                            "maxLength": 30,
                            "pattern": r"^(al2|al2023|bottlerocket)@.+$",
                        }
                    },
                    ["alias"],
                ),
            },
            "subnetSelectorTerms": {
                "type": "array",
                "minItems": 1,
                "maxItems": 30,
                "items": _object({"id": {"type": "string", "pattern": "subnet-[0-9a-z]+"}}, ["id"]),
            },
            "securityGroupSelectorTerms": {
                "type": "array",
                "minItems": 1,
                "maxItems": 30,
                "items": _object({"id": {"type": "string", "pattern": "sg-[0-9a-z]+"}}, ["id"]),
            },
            "associatePublicIPAddress": {"type": "boolean"},
            # Any KubeletConfiguration field may be set; these are the ones Karpenter reads.
            "kubelet": _object({"maxPods": {"type": "integer", "minimum": 0}}),
            "metadataOptions": _object(
                {
                    "httpEndpoint": {"enum": ["enabled", "disabled"]},
                    "httpProtocolIPv6": {"enum": ["enabled", "disabled"]},
                    "httpPutResponseHopLimit": {"type": "integer", "minimum": 1, "maximum": 64},
                    "httpTokens": {"enum": ["required", "optional"]},
                }
            ),
            "blockDeviceMappings": {
                "type": "array",
                "maxItems": 50,
                "items": _object(
                    {
                        "deviceName": {"type": "string"},
                        "ebs": _object(
                            {
                                "volumeSize": {
                                    "type": "string",
                                    "pattern": r"^[1-9][0-9]{0,4}Gi$",
                                },
                                "volumeType": {
                                    "enum": ["standard", "io1", "io2", "gp2", "sc1", "st1", "gp3"]
                                },
                                "encrypted": {"type": "boolean"},
                                "deleteOnTermination": {"type": "boolean"},
                            }
                        ),
                    }
                ),
            },
        },
        ["role", "amiSelectorTerms", "subnetSelectorTerms", "securityGroupSelectorTerms"],
    ),
)

SCHEMAS: Final = {"NodePool": NODE_POOL_SCHEMA, "EC2NodeClass": EC2_NODE_CLASS_SCHEMA}
