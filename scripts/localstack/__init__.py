"""The `local` stack on a real node of this machine: deployed by the engine built here
with the images built here, reached through ``kubectl port-forward``.

``deploy`` and ``port_forward`` are what the tests use; ``python -m
scripts.localstack`` (``make demo-cluster``) runs the whole of it until Ctrl-C.
"""

from __future__ import annotations

from .deploy import LocalStack, deploy, destroy, stack_settings
from .portforward import PortForward, PortForwardError, port_forward

__all__ = [
    "LocalStack",
    "PortForward",
    "PortForwardError",
    "deploy",
    "destroy",
    "port_forward",
    "stack_settings",
]
