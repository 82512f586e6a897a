"""python -m infra.cost: itemized, summed, in docs/cost.md as it prints, bad input refused."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from infra.cost import Estimate, estimate
from infra.prices import PRICES, SPOT_SHARE
from tests.infra.harness import REPO, TODAY

LEAN_BUDGET = 110


def run_cost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.cost", *args, "--on", TODAY.isoformat()],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cost_md_block(name: str) -> str:
    text = (REPO / "docs" / "cost.md").read_text()
    found = re.search(rf"<!-- cost:{name}:begin -->\n(.*?)<!-- cost:{name}:end -->", text, re.S)
    assert found, f"docs/cost.md has no cost:{name} block"
    return found.group(1)


@pytest.mark.parametrize(
    ("name", "args"),
    [("standard", ["--stack", "prod"]), ("lean", ["--stack", "prod", "--profile", "lean"])],
)
def test_cost_md_shows_the_table_as_the_command_prints_it(name: str, args: list[str]) -> None:
    result = run_cost(*args)
    assert result.returncode == 0, result.stderr
    assert cost_md_block(name) == result.stdout
    assert (
        result.stdout.splitlines()[-1]
        == f"total: ${estimate('prod', profile=name, on=TODAY).rounded_total}/month"
    )


@pytest.mark.parametrize("profile", ["standard", "lean"])
def test_total_is_the_sum_of_the_items(profile: str) -> None:
    result = estimate("prod", profile=profile, on=TODAY)
    assert result.total == sum(item.monthly for item in result.items)
    assert result.rounded_total == round(Decimal(str(result.total)))
    # The printed rows add up to the printed total too (cents, then whole dollars).
    printed = run_cost("--stack", "prod", "--profile", profile).stdout.splitlines()
    cents = [
        Decimal(m.group(1).replace(",", ""))
        for line in printed
        if (m := re.search(r"\| \$([\d,.]+) \|$", line))
    ]
    assert len(cents) == len(result.items)
    assert abs(sum(cents) - Decimal(str(result.total))) <= Decimal("0.01") * len(cents)
    assert re.fullmatch(r"total: \$\d+/month", printed[-1])


def test_lean_fits_the_budget() -> None:
    lean = estimate("prod", profile="lean", on=TODAY)
    assert lean.total <= LEAN_BUDGET
    assert lean.rounded_total <= LEAN_BUDGET
    standard = estimate("prod", on=TODAY)
    assert standard.profile == "standard"
    assert lean.total < standard.total - 80


def test_items_follow_the_config() -> None:
    region = PRICES["eu-west-1"]
    lean = {item.what: item.monthly for item in estimate("prod", profile="lean", on=TODAY).items}
    spot = next(v for k, v in lean.items() if k.startswith("1 x t4g.small Spot"))
    assert spot == pytest.approx(region.instance_hour["t4g.small"] * SPOT_SHARE * 730)
    assert not [k for k in lean if k.startswith("NAT gateway")]
    assert any(k.startswith("public IPv4 addresses, 3 (ALB 2, nodes 1;") for k in lean)
    standard = {item.what for item in estimate("prod", on=TODAY).items}
    assert "2 x t4g.medium on demand ($0.0368/h)" in standard
    assert any(k.startswith("public IPv4 addresses, 3 (ALB 2, NAT 1;") for k in standard)


def copy_project(tmp_path: Path, stack_file: str, name: str = "test") -> Path:
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / f"Pulumi.{name}.yaml").write_text(stack_file)
    return tmp_path


PROD_LIKE = """config:
  aws:region: {region}
  pingpod:domain: pingpod.example.com
  pingpod:hostedZoneId: Z0000000000EXAMPLE00
{extra}"""


def test_extended_support_is_priced(tmp_path: Path) -> None:
    extra = '  pingpod:kubernetesVersion: "1.33"\n  pingpod:allowExtendedSupport: true\n'
    project = copy_project(tmp_path, PROD_LIKE.format(region="eu-west-1", extra=extra))
    items = estimate("test", on=TODAY, repo=project).items
    assert items[0].what == "EKS control plane (extended support, $0.60/h)"
    assert items[0].monthly == pytest.approx(438)


def one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0], lines[0]


def test_region_without_prices_is_a_clear_error(tmp_path: Path) -> None:
    project = copy_project(tmp_path, PROD_LIKE.format(region="ap-south-2", extra=""))
    one_line_error(
        run_cost("--stack", "test", "--dir", str(project)),
        "error: aws:region 'ap-south-2': no prices for it in infra/prices.py "
        "(regions: eu-west-1, us-east-1)",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--stack", "staging"],
            "error: unknown stack 'staging': no Pulumi.staging.yaml (stacks: local, prod)",
        ),
        (["--stack", "../etc"], "error: unknown stack '../etc': not a stack name"),
        (
            ["--stack", "prod", "--profile", "tiny"],
            "error: pingpod:profile: expected a profile ('standard' or 'lean'), got 'tiny'",
        ),
        (["--stack", "local"], "error: stack 'local' is mode 'app': it creates nothing on AWS"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    one_line_error(run_cost(*args), message)


@pytest.mark.parametrize(
    ("stack_file", "message"),
    [
        ("config: [unclosed\n", "error: Pulumi.test.yaml: not valid YAML:"),
        ("- a list\n", "error: Pulumi.test.yaml: expected a mapping at the top"),
        ("config: 5\n", "error: Pulumi.test.yaml: 'config' is not a mapping"),
        (
            PROD_LIKE.format(region="", extra=""),
            "error: Pulumi.test.yaml: aws:region is not set",
        ),
        (
            PROD_LIKE.format(region="eu-west-1", extra="  pingpod:nodeDesiredSize: many\n"),
            "error: pingpod:nodeDesiredSize: expected an integer",
        ),
        (
            PROD_LIKE.format(
                region="eu-west-1", extra="  pingpod:nodeInstanceTypes: [m7g.large]\n"
            ),
            "error: pingpod:nodeInstanceTypes: no price for m7g.large in eu-west-1",
        ),
    ],
)
def test_unreadable_or_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, stack_file: str, message: str
) -> None:
    project = copy_project(tmp_path, stack_file)
    one_line_error(run_cost("--stack", "test", "--dir", str(project)), message)


def test_unreadable_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    project = copy_project(tmp_path, "")
    (project / "Pulumi.test.yaml").write_bytes(b"\xff\xfe\x00bad")
    one_line_error(run_cost("--stack", "test", "--dir", str(project)), "error: Pulumi.test.yaml:")


def test_estimate_lines_end_with_the_total() -> None:
    result: Estimate = estimate("prod", on=TODAY)
    assert result.lines()[-1] == f"total: ${result.rounded_total}/month"
