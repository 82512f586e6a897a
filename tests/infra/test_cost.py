"""python -m infra.cost: itemized, summed, in docs/cost.md as it prints, bad input refused."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from infra.cost import Estimate, dollars, estimate
from infra.keys import default_integer
from infra.prices import PRICES, SPOT_SHARE
from infra.session_nodes import SESSION_NODE_VCPUS
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
    priced = estimate("prod", profile=name, on=TODAY)
    lines = result.stdout.splitlines()
    # The prod stack scales: the floor, then the ceiling last.
    assert (
        f"floor: ${priced.rounded_total}/month (the system nodes alone, no session node)" in lines
    )
    assert lines[-1] == (
        f"ceiling: ${dollars(priced.ceiling('spot'))}/month on Spot, "
        f"${dollars(priced.ceiling('on_demand'))}/month on demand"
    )


def table_rows(printed: list[str], header: str) -> list[list[Decimal]]:
    """The dollar columns of the Markdown table under ``header``, row by row."""
    start = printed.index(header) + 2
    end = printed.index("", start)
    return [
        [Decimal(cell.strip().lstrip("$").replace(",", "")) for cell in row.split("|")[2:-1]]
        for row in printed[start:end]
    ]


@pytest.mark.parametrize("profile", ["standard", "lean"])
def test_total_is_the_sum_of_the_items(profile: str) -> None:
    result = estimate("prod", profile=profile, on=TODAY)
    assert result.total == sum(item.monthly for item in result.items)
    assert result.rounded_total == round(Decimal(str(result.total)))
    # The printed rows add up to the printed total too (cents, then whole dollars).
    printed = run_cost("--stack", "prod", "--profile", profile).stdout.splitlines()
    cents = [row[0] for row in table_rows(printed, "| item | monthly |")]
    assert len(cents) == len(result.items)
    assert abs(sum(cents) - Decimal(str(result.total))) <= Decimal("0.01") * len(cents)
    # And the session nodes' rows, each way, to the ceiling.
    assert result.session_nodes is not None
    extra = table_rows(printed, "| item | monthly on Spot | monthly on demand |")
    assert len(extra) == len(result.session_nodes.items)
    for column, bought in enumerate(("spot", "on_demand")):
        added = sum(row[column] for row in extra)
        expected = Decimal(str(result.ceiling(bought) - result.total))
        assert abs(added - expected) <= Decimal("0.01") * len(extra)
    assert re.fullmatch(r"ceiling: \$\d+/month on Spot, \$\d+/month on demand", printed[-1])


def test_lean_fits_the_budget() -> None:
    lean = estimate("prod", profile="lean", on=TODAY)
    assert lean.total <= LEAN_BUDGET
    assert lean.rounded_total <= LEAN_BUDGET
    standard = estimate("prod", on=TODAY)
    assert standard.profile == "standard"
    # No NAT gateway, one Spot node instead of two on demand.
    assert lean.total < standard.total - 50
    # Session nodes are Spot only in the lean profile; its Spot ceiling stays far below
    # what the standard profile's floor costs with autoscaling off (python -m infra.cost).
    assert lean.session_nodes is not None and lean.session_nodes.capacity_types == ("spot",)


def test_items_follow_the_config() -> None:
    region = PRICES["eu-west-1"]
    lean = {item.what: item.monthly for item in estimate("prod", profile="lean", on=TODAY).items}
    spot = next(v for k, v in lean.items() if k.startswith("system nodes, 1 x t4g.small Spot"))
    assert spot == pytest.approx(region.instance_hour["t4g.small"] * SPOT_SHARE * 730)
    assert not [k for k in lean if k.startswith("NAT gateway")]
    assert any(k.startswith("public IPv4 addresses, 3 (ALB 2, nodes 1;") for k in lean)
    standard = {item.what for item in estimate("prod", on=TODAY).items}
    # With autoscaling the node group is the system group: two t4g.small.
    assert "system nodes, 2 x t4g.small on demand ($0.0184/h)" in standard
    assert any(k.startswith("public IPv4 addresses, 3 (ALB 2, NAT 1;") for k in standard)


def test_fixed_nodes_are_priced_from_the_node_keys(tmp_path: Path) -> None:
    extra = "  pingpod:autoscaling: false\n  pingpod:nodeDesiredSize: 3\n"
    project = copy_project(tmp_path, PROD_LIKE.format(region="eu-west-1", extra=extra))
    fixed = estimate("test", on=TODAY, repo=project)
    assert fixed.session_nodes is None
    assert "3 x t4g.medium on demand ($0.0368/h)" in {item.what for item in fixed.items}
    assert fixed.lines()[-1] == f"total: ${fixed.rounded_total}/month"


@pytest.mark.parametrize(("profile", "public"), [("standard", False), ("lean", True)])
def test_ceiling_is_the_limit_at_the_priciest_allowed_type(profile: str, public: bool) -> None:
    region = PRICES["eu-west-1"]
    priced = estimate("prod", profile=profile, on=TODAY)
    assert priced.session_nodes is not None
    nodes = default_integer("sessionNodesMaxCpu") // SESSION_NODE_VCPUS
    assert nodes >= 1
    first = priced.session_nodes.items[0]
    assert first.what.startswith(f"{nodes} x t4g.medium ")
    hourly = region.instance_hour["t4g.medium"]
    assert first.on_demand == pytest.approx(nodes * hourly * 730)
    assert first.spot == pytest.approx(nodes * hourly * SPOT_SHARE * 730)
    # Public nodes (lean) pay for their addresses; private ones go out through the NAT.
    addresses = [i for i in priced.session_nodes.items if i.what.startswith("public IPv4")]
    assert len(addresses) == (1 if public else 0)
    assert priced.total < priced.ceiling("spot") < priced.ceiling("on_demand")


def test_ceiling_follows_the_limit(tmp_path: Path) -> None:
    extra = "  pingpod:sessionNodesMaxCpu: 12\n"
    project = copy_project(tmp_path, PROD_LIKE.format(region="eu-west-1", extra=extra))
    priced = estimate("test", on=TODAY, repo=project)
    assert priced.session_nodes is not None
    assert priced.session_nodes.items[0].what.startswith("6 x t4g.medium ")


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
                region="eu-west-1",
                extra="  pingpod:autoscaling: false\n  pingpod:nodeInstanceTypes: [m7g.large]\n",
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


def test_estimate_lines_end_with_the_ceiling() -> None:
    result: Estimate = estimate("prod", on=TODAY)
    assert result.lines()[-1].startswith(f"ceiling: ${dollars(result.ceiling('spot'))}/month")
