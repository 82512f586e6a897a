"""Fixtures: each stack's program runs once under mocks per session (the time each
took is printed at the end)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.infra.harness import StackRun, run_stack
from tests.infra.render import app_objects, echo_replicaset

# How long each program took under mocks: reported at the end of the run, not asserted.
RUN_SECONDS: dict[str, float] = {}


def _timed(stack: str) -> StackRun:
    started = time.monotonic()
    run = run_stack(stack)
    RUN_SECONDS[stack] = time.monotonic() - started
    return run


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RUN_SECONDS:
        terminalreporter.section("the programs under mocks")
        for stack, seconds in RUN_SECONDS.items():
            terminalreporter.write_line(f"{stack}: {seconds:.1f} s")


@pytest.fixture(scope="session")
def prod() -> StackRun:
    return _timed("prod")


@pytest.fixture(scope="session")
def local() -> StackRun:
    return _timed("local")


@pytest.fixture(scope="session", params=["prod", "local"])
def stack_run(request: pytest.FixtureRequest, prod: StackRun, local: StackRun) -> StackRun:
    return prod if request.param == "prod" else local


@pytest.fixture(scope="session")
def objects(stack_run: StackRun) -> list[dict[str, Any]]:
    """The App's objects of the stack, plus an echo ReplicaSet as the provisioner makes it."""
    rendered = app_objects(stack_run)
    return [*rendered, echo_replicaset(rendered)]
