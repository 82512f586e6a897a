"""What the program reads from the machine it runs on: the date and the tools on PATH.

The program asks ``current_host()`` instead of calling ``date.today()``,
``shutil.which()`` or ``aws --version`` itself, so tests can run it on a fixed
date and with or without an AWS CLI, of any version (``use_host``). Each Pulumi
run gets a fresh context, so a host set in one run does not leak into the next.
"""

from __future__ import annotations

import re
import shutil
import subprocess
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
AWS_CLI_V1_MINIMUM: Final = "1.24.0"
# `aws --version` prints e.g. "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64...";
# v1 prints it on stderr.
_AWS_CLI_VERSION: Final = re.compile(r"\baws-cli/([0-9]+(?:\.[0-9]+)*)")
AWS_CLI_INSTALL: Final = (
    "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
)


def version_output(program: str) -> str:
    """What ``program --version`` prints, stdout and stderr; "" if it cannot be run."""
    try:
        result = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout + result.stderr


@dataclass(frozen=True, kw_only=True)
class Host:
    today: Callable[[], date] = field(default=date.today)
    which: Callable[[str], str | None] = field(default=shutil.which)
    version: Callable[[str], str] = field(default=version_output)


_HOST: ContextVar[Host | None] = ContextVar("pingpod_host", default=None)


def current_host() -> Host:
    """The host set with ``use_host`` in this context, else the real machine."""
    return _HOST.get() or Host()


def use_host(host: Host) -> Token[Host | None]:
    """Make ``host`` the one ``current_host()`` returns in this context."""
    return _HOST.set(host)


class MissingTool(pulumi.RunError):
    """A program the deployment runs is not installed; a RunError prints just the message."""


class OutdatedTool(pulumi.RunError):
    """A program the deployment runs is older than the release it needs."""


def version_at_least(version: str, minimum: str) -> bool:
    """Whether the dotted ``version`` is ``minimum`` or later.

    Compared number by number (2.10.0 is later than 2.7.0); a missing number
    counts as 0 (2.7 is 2.7.0).
    """
    found, needed = _numbers(version), _numbers(minimum)
    width = max(len(found), len(needed))
    return found + (0,) * (width - len(found)) >= needed + (0,) * (width - len(needed))


def _numbers(version: str) -> tuple[int, ...]:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
        raise ValueError(f"not a dotted version: {version!r}")
    return tuple(int(part) for part in version.split("."))


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


def require_aws_cli_version(version_text: str) -> str:
    """The version ``aws --version`` printed, or an OutdatedTool error naming the minimum.

    A CLI older than ``AWS_CLI_MINIMUM`` (``AWS_CLI_V1_MINIMUM`` for v1) hands
    ``aws eks get-token``'s callers a credential they refuse, so every Kubernetes
    call would fail once the cluster exists: refused up front, as a missing CLI is.
    """
    found = _AWS_CLI_VERSION.search(version_text)
    if found is None:
        raise OutdatedTool(
            f"cannot tell the AWS CLI's version from `aws --version` "
            f"({version_text.strip()[:200]!r}); the deployment needs v{AWS_CLI_MINIMUM} or "
            f"later. Install it ({AWS_CLI_INSTALL}) and run again."
        )
    version = found.group(1)
    minimum = AWS_CLI_V1_MINIMUM if version.split(".")[0] == "1" else AWS_CLI_MINIMUM
    if not version_at_least(version, minimum):
        raise OutdatedTool(
            f"the AWS CLI on PATH is v{version}; the deployment needs v{AWS_CLI_MINIMUM} or "
            f"later (v{AWS_CLI_V1_MINIMUM} or later of v1): older releases answer "
            "`aws eks get-token` with a client.authentication.k8s.io/v1alpha1 credential, "
            "which the cluster's kubeconfig and Kubernetes clients since 1.24 refuse. "
            f"Upgrade it ({AWS_CLI_INSTALL}) and run again."
        )
    return version
