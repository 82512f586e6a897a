"""The Kubernetes version: EKS's support calendar, the warning before its end, the price after."""

from __future__ import annotations

from datetime import date

import pulumi
import pytest

from infra.config_reader import ConfigError
from infra.keys import DEFAULTS
from infra.support import EKS_VERSIONS, support_warning
from tests.infra.harness import TODAY, StackMocks, fake_host, run_program, stack_config

PRICE = "$0.60/h (~$438/month) instead of $0.10/h"


def _months_later(day: date, months: int) -> date:
    years, month = divmod(day.month - 1 + months, 12)
    return day.replace(year=day.year + years, month=month + 1)


@pytest.mark.parametrize("version", list(EKS_VERSIONS))
def test_calendar_follows_the_eks_rule(version: str) -> None:
    """Standard support: 14 months from the EKS release; extended support: 12 more."""
    window = EKS_VERSIONS[version]
    assert window.end_of_standard_support == _months_later(window.released, 14)
    assert window.end_of_extended_support == _months_later(window.end_of_standard_support, 12)


def test_calendar_dates() -> None:
    assert EKS_VERSIONS["1.34"].end_of_standard_support == date(2026, 12, 2)
    assert EKS_VERSIONS["1.36"].released == date(2026, 6, 2)


def test_default_is_the_newest_version_and_far_from_its_end() -> None:
    newest = max(EKS_VERSIONS, key=lambda v: EKS_VERSIONS[v].released)
    assert DEFAULTS["kubernetesVersion"] == newest == "1.36"
    assert support_warning(newest, today=TODAY, allow_extended=False) is None


# (version, today, what the warning says; None for no warning)
WARNINGS: list[tuple[str, date, str | None]] = [
    ("1.35", TODAY, None),
    ("1.34", date(2026, 10, 2), None),  # 61 days before the end
    ("1.34", date(2026, 10, 3), "leaves EKS standard support on 2026-12-02 (in 60 days)"),
    ("1.34", TODAY, "1.34 leaves EKS standard support on 2026-12-02 (in 9 days)"),
    ("1.34", date(2026, 12, 1), "(in 1 day);"),
]


@pytest.mark.parametrize(("version", "today", "message"), WARNINGS)
def test_warns_within_60_days_of_the_end(version: str, today: date, message: str | None) -> None:
    warning = support_warning(version, today=today, allow_extended=False)
    if message is None:
        assert warning is None
    else:
        assert warning is not None
        assert warning.startswith("pingpod:kubernetesVersion: ")
        assert message in warning
        assert PRICE in warning
        assert "choose 1.35 or 1.36" in warning


def test_refuses_a_version_in_extended_support() -> None:
    # Billing for extended support starts on the end date itself.
    with pytest.raises(ConfigError) as caught:
        support_warning("1.34", today=date(2026, 12, 2), allow_extended=False)
    message = str(caught.value)
    assert message.startswith(
        "pingpod:kubernetesVersion: 1.34 left EKS standard support on 2026-12-02"
    )
    assert PRICE in message
    assert "pingpod:allowExtendedSupport" in message


def test_extended_support_when_allowed_still_warns() -> None:
    warning = support_warning("1.34", today=date(2026, 12, 2), allow_extended=True)
    assert warning is not None
    assert "in EKS extended support since 2026-12-02" in warning
    assert PRICE in warning


def test_refuses_a_version_past_extended_support_even_when_allowed() -> None:
    with pytest.raises(ConfigError, match=r"1\.33 left EKS extended support on 2027-07-29"):
        support_warning("1.33", today=date(2027, 7, 29), allow_extended=True)


def test_no_known_version_left_to_suggest() -> None:
    message = support_warning("1.36", today=date(2027, 7, 1), allow_extended=False)
    assert message is not None
    assert "add the newer ones EKS serves" in message


def _warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **k: seen.append(message))
    return seen


def test_program_warns_at_preview_and_deploys(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _warnings(monkeypatch)
    run = run_program("prod", stack_config("prod", {"kubernetesVersion": "1.34"}))
    assert run.one("eks:index:Cluster").inputs["version"] == "1.34"
    assert [w for w in seen if "kubernetesVersion" in w] == [
        support_warning("1.34", today=TODAY, allow_extended=False)
    ]


def test_program_on_the_default_version_does_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _warnings(monkeypatch)
    run_program("prod", stack_config("prod"))
    assert not [w for w in seen if "kubernetesVersion" in w]


def test_program_refuses_extended_support_before_any_resource() -> None:
    mocks = StackMocks("prod")
    config = stack_config("prod", {"kubernetesVersion": "1.34"})
    with pytest.raises(ConfigError, match="allowExtendedSupport"):
        run_program("prod", config, mocks=mocks, host=fake_host(today=date(2026, 12, 2)))
    assert mocks.resources == []


def test_program_accepts_extended_support_when_allowed() -> None:
    config = stack_config("prod", {"kubernetesVersion": "1.33", "allowExtendedSupport": True})
    run = run_program("prod", config)
    assert run.one("eks:index:Cluster").inputs["version"] == "1.33"
