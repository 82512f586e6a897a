"""The EKS support calendar, and what the program does as a version nears its end.

``EKS_VERSIONS`` is the Kubernetes versions this program deploys and their
support windows on EKS; ``support_warning`` judges a version on a given day:
nothing while its end of standard support is far off, a warning as it nears,
a ConfigError once extended support would bill the control plane (unless the
stack allows it) and always once extended support is over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final

from infra.config_reader import ConfigError
from infra.keys import PROJECT


@dataclass(frozen=True)
class EksVersion:
    """One Kubernetes minor version's support window on EKS (dates in UTC)."""

    released: date
    end_of_standard_support: date
    end_of_extended_support: date


# The Amazon EKS Kubernetes release calendar,
# https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html#kubernetes-release-calendar
# read 2026-11-23. Standard support lasts 14 months from the EKS release and
# extended support 12 more (a test checks each row against that rule); 1.36's
# row is computed from its EKS release on 2026-06-02. Extended support bills
# the control plane from the first day past the end of standard support.
# Add a row when EKS releases a version, and move the default to it.
EKS_VERSIONS: Final[Mapping[str, EksVersion]] = {
    "1.33": EksVersion(date(2025, 5, 29), date(2026, 7, 29), date(2027, 7, 29)),
    "1.34": EksVersion(date(2025, 10, 2), date(2026, 12, 2), date(2027, 12, 2)),
    "1.35": EksVersion(date(2026, 1, 27), date(2027, 3, 27), date(2028, 3, 27)),
    "1.36": EksVersion(date(2026, 6, 2), date(2027, 8, 2), date(2028, 8, 2)),
}
# EKS announces the end of standard support at least 60 days ahead; warn from then on.
SUPPORT_WARNING_DAYS: Final = 60
EXTENDED_SUPPORT_PRICE: Final = "$0.60/h (~$438/month) instead of $0.10/h (~$73/month)"


def _upgrade_hint(today: date) -> str:
    """Which versions to move to: those still in standard support for a while."""
    current = [
        v
        for v, window in EKS_VERSIONS.items()
        if (window.end_of_standard_support - today).days > SUPPORT_WARNING_DAYS
    ]
    if not current:
        return (
            "every version in infra/support.py's EKS_VERSIONS is near or past its end; "
            "add the newer ones EKS serves and choose one"
        )
    return f"choose {' or '.join(current)}"


def support_warning(version: str, *, today: date, allow_extended: bool) -> str | None:
    """A warning about ``version``'s EKS support window, or None when it is far off.

    Raises ConfigError once the version is in extended support (EKS bills the
    control plane six times the standard rate from the end date on) unless
    ``allow_extended``, and always once extended support is over (EKS then
    creates no such cluster and upgrades existing ones on its own).
    """
    window = EKS_VERSIONS[version]
    key = f"{PROJECT}:kubernetesVersion"
    standard_end = window.end_of_standard_support.isoformat()
    if today >= window.end_of_extended_support:
        raise ConfigError(
            f"{key}: {version} left EKS extended support on "
            f"{window.end_of_extended_support.isoformat()}; {_upgrade_hint(today)}"
        )
    if today >= window.end_of_standard_support:
        if not allow_extended:
            raise ConfigError(
                f"{key}: {version} left EKS standard support on {standard_end}; in extended "
                f"support its control plane costs {EXTENDED_SUPPORT_PRICE}: "
                f"{_upgrade_hint(today)}, or set {PROJECT}:allowExtendedSupport to true "
                "to pay for it"
            )
        return (
            f"{key}: {version} is in EKS extended support since {standard_end}: the control "
            f"plane costs {EXTENDED_SUPPORT_PRICE}; {_upgrade_hint(today)}"
        )
    days_left = (window.end_of_standard_support - today).days
    if days_left <= SUPPORT_WARNING_DAYS:
        days = f"{days_left} day{'' if days_left == 1 else 's'}"
        return (
            f"{key}: {version} leaves EKS standard support on {standard_end} (in {days}); "
            f"from then on the control plane costs {EXTENDED_SUPPORT_PRICE}: "
            f"{_upgrade_hint(today)} before then"
        )
    return None
