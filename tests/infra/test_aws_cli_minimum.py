"""An AWS CLI older than AWS_CLI_MINIMUM is refused before anything is declared."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra.host import (
    AWS_CLI_MINIMUM,
    AWS_CLI_V1_MINIMUM,
    OutdatedTool,
    require_aws_cli_version,
    version_at_least,
    version_output,
)
from tests.infra.harness import StackMocks, fake_host, run_program, stack_config

# What `aws --version` prints (v2 on stdout, v1 on stderr; the host reads both).
V2 = "aws-cli/{} Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off\n"
V1 = "aws-cli/{} Python/3.11.4 Linux/6.2.0 botocore/1.31.0\n"


@pytest.mark.parametrize(
    ("version", "minimum", "at_least"),
    [
        ("2.7.0", "2.7.0", True),
        ("2.6.4", "2.7.0", False),
        ("2.10.0", "2.7.0", True),  # by number, not by text
        ("2.7.10", "2.7.9", True),
        ("3.0.0", "2.7.0", True),
        ("1.99.99", "2.7.0", False),
        ("2.7", "2.7.0", True),  # a missing number is 0
        ("2.6", "2.7.0", False),
    ],
)
def test_version_at_least(version: str, minimum: str, at_least: bool) -> None:
    assert version_at_least(version, minimum) is at_least


def test_version_at_least_refuses_what_is_not_a_version() -> None:
    with pytest.raises(ValueError, match="not a dotted version"):
        version_at_least("2.7.0dev1", "2.7.0")


@pytest.mark.parametrize(
    ("printed", "version"),
    [
        (V2.format(AWS_CLI_MINIMUM), AWS_CLI_MINIMUM),
        (V2.format("2.15.30"), "2.15.30"),
        (V1.format("1.29.0"), "1.29.0"),
        (V1.format(AWS_CLI_V1_MINIMUM), AWS_CLI_V1_MINIMUM),
    ],
)
def test_a_recent_cli_is_accepted(printed: str, version: str) -> None:
    assert require_aws_cli_version(printed) == version


@pytest.mark.parametrize(
    ("printed", "found"),
    [(V2.format("2.6.4"), "2.6.4"), (V2.format("2.0.0"), "2.0.0"), (V1.format("1.23.9"), "1.23.9")],
)
def test_an_older_cli_is_refused_naming_the_minimum(printed: str, found: str) -> None:
    with pytest.raises(OutdatedTool) as caught:
        require_aws_cli_version(printed)
    message = str(caught.value)
    assert message.startswith(f"the AWS CLI on PATH is v{found}; the deployment needs v2.7.0 ")
    assert "v1.24.0 or later of v1" in message
    assert "aws eks get-token" in message


@pytest.mark.parametrize("printed", ["", "command not found\n", "aws-cli/two Python/3.11\n"])
def test_an_unreadable_version_is_refused(printed: str) -> None:
    with pytest.raises(OutdatedTool, match=r"cannot tell the AWS CLI's version .* needs v2\.7\.0"):
        require_aws_cli_version(printed)


def test_an_older_cli_stops_the_aws_stack_before_anything() -> None:
    mocks = StackMocks("prod")
    with pytest.raises(OutdatedTool, match=r"the AWS CLI on PATH is v2\.6\.4"):
        run_program("prod", stack_config("prod"), mocks=mocks, host=fake_host(aws_version="2.6.4"))
    assert mocks.resources == [], "resources were declared before the AWS CLI was checked"
    assert mocks.calls == [], "AWS was asked before the AWS CLI was checked"


def test_the_app_stack_does_not_ask_the_version() -> None:
    run = run_program("local", stack_config("local"), host=fake_host(aws_version="1.0.0"))
    assert run.one("pingpod:app:App")


def test_version_output_runs_the_program(tmp_path: Path) -> None:
    # A stand-in for v1, which prints its version on stderr.
    program = tmp_path / "aws"
    program.write_text(
        f"#!{sys.executable}\nimport sys\nsys.stderr.write({V1.format('1.29.0')!r})\n"
    )
    program.chmod(0o755)
    assert version_output(str(program)) == V1.format("1.29.0")
    assert version_output(str(tmp_path / "missing")) == ""
