"""The AWS CLI: the AWS stack needs it (the kubeconfig runs `aws eks get-token`)."""

from __future__ import annotations

import pytest

from infra.host import MissingTool, require_aws_cli
from tests.infra.harness import StackMocks, fake_host, run_program, stack_config


def test_aws_mode_without_the_cli_stops_before_anything() -> None:
    mocks = StackMocks("prod")
    with pytest.raises(MissingTool) as caught:
        run_program("prod", stack_config("prod"), mocks=mocks, host=fake_host(aws_cli=False))
    message = str(caught.value)
    assert "the AWS CLI (`aws`, v2.7.0 or later) is not on PATH" in message
    assert "aws eks get-token" in message
    assert mocks.resources == [], "resources were declared before the AWS CLI was checked"
    assert mocks.calls == [], "AWS was asked before the AWS CLI was checked"


def test_aws_mode_with_the_cli_deploys() -> None:
    run = run_program("prod", stack_config("prod"), host=fake_host(aws_cli=True))
    assert run.one("eks:index:Cluster")


def test_app_mode_needs_no_aws_cli() -> None:
    run = run_program("local", stack_config("local"), host=fake_host(aws_cli=False))
    assert run.one("pingpod:app:App")


def test_require_aws_cli_looks_up_aws() -> None:
    asked: list[str] = []

    def which(name: str) -> str | None:
        asked.append(name)
        return "/opt/aws/bin/aws"

    assert require_aws_cli(which) == "/opt/aws/bin/aws"
    assert asked == ["aws"]
