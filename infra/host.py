"""What the program reads from the machine it runs on: the date and the tools on PATH.

The program asks ``current_host()`` instead of calling ``date.today()`` or
``shutil.which()`` itself, so tests can run it on a fixed date and with or
without an AWS CLI (``use_host``). Each Pulumi run gets a fresh context, so a
host set in one run does not leak into the next.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import date
from typing import Final

import pulumi

# `aws eks get-token` answers with the client.authentication.k8s.io/v1beta1
# ExecCredential that pulumi-eks's kubeconfig asks for by default only since
# AWS CLI 2.7.0 (v1: 1.24.0), May 2022; older releases answered v1alpha1, which
# Kubernetes clients since 1.24 reject.
AWS_CLI_MINIMUM: Final = "2.7.0"
AWS_CLI_INSTALL: Final = (
    "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
)


@dataclass(frozen=True, kw_only=True)
class Host:
    today: Callable[[], date] = field(default=date.today)
    which: Callable[[str], str | None] = field(default=shutil.which)


_HOST: ContextVar[Host | None] = ContextVar("pingpod_host", default=None)


def current_host() -> Host:
    """The host set with ``use_host`` in this context, else the real machine."""
    return _HOST.get() or Host()


def use_host(host: Host) -> Token[Host | None]:
    """Make ``host`` the one ``current_host()`` returns in this context."""
    return _HOST.set(host)


class MissingTool(pulumi.RunError):
    """A program the deployment runs is not installed; a RunError prints just the message."""


def require_aws_cli(which: Callable[[str], str | None]) -> str:
    """The path of ``aws``, or a MissingTool error saying why it is needed.

    The kubeconfig pulumi-eks builds authenticates with ``aws eks get-token``:
    without the CLI every Kubernetes object (and the load balancer controller's
    chart) fails, after the VPC and the cluster have already been paid for. So
    the AWS stack checks before it declares anything.
    """
    path = which("aws")
    if path is None:
        raise MissingTool(
            f"the AWS CLI (`aws`, v{AWS_CLI_MINIMUM} or later) is not on PATH: the cluster's "
            "kubeconfig runs `aws eks get-token` for every Kubernetes call, so nothing could be "
            f"deployed onto the cluster. Install it ({AWS_CLI_INSTALL}) and run again."
        )
    return path
