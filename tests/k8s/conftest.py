"""Marks every test here ``k8s``; the control-plane fixtures are in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

K8S_TESTS = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Runs before `-m` deselection, so `-m k8s` / `-m "not k8s"` see the marker.
    for item in items:
        if K8S_TESTS in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.k8s)
