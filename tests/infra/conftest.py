"""Fixtures: each stack's program runs once under mocks per session."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.infra.harness import StackRun, run_stack
from tests.infra.render import app_objects, echo_replicaset

# Each stack must run under mocks within this many seconds.
RUN_BUDGET_SECONDS = 20.0


def _timed(stack: str) -> StackRun:
    started = time.monotonic()
    run = run_stack(stack)
    elapsed = time.monotonic() - started
    if elapsed > RUN_BUDGET_SECONDS:
        pytest.fail(f"the {stack} program took {elapsed:.1f}s under mocks")
    return run


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
