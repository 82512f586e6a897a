"""Builds that must finish before the first test (the control plane, the engine,
the images), run from ``pytest_collection_finish`` by the suites' conftest.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scripts.controlplane import BuildError


def uses_fixture(session: pytest.Session, name: str) -> bool:
    return any(name in getattr(item, "fixturenames", ()) for item in session.items)


def build_before_tests(
    session: pytest.Session, prefix: str, ensure: Callable[..., object]
) -> str | None:
    """Run ``ensure(log=...)`` with its progress on the terminal; the error, if any.

    Called from ``pytest_collection_finish`` rather than a fixture: a cold build
    takes minutes and the per-test timeout would cut it short. The fixture that
    needs the build fails with the error; nothing is skipped.
    """
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def log(msg: str) -> None:
        if reporter is not None:
            reporter.write_line(f"{prefix}: {msg}")

    try:
        ensure(log=log)
    except BuildError as exc:
        return str(exc)
    return None
