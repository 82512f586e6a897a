"""The page on real pods: Chromium against the in-cluster provisioner of the `local`
stack on a real node, through ``kubectl port-forward`` (``real_stack``,
tests/conftest.py). Start, pongs from the echo container, Kill my pod, the
container dies, the ReplicaSet's replacement starts, pongs resume, and the
replacement anatomy shows the real phases. `make test-node` runs it (marker ``node``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from scripts.controlplane.node import NODE_NAME
from tests.e2e.helpers import (
    TIMINGS,
    PageErrors,
    pong_count,
    start_session,
    wait_connected,
    wait_pongs,
)
from tests.e2e.test_showcase import PHASES, check_anatomy, kill_through_dialog
from tests.realstack import RealStack

pytestmark = [pytest.mark.e2e, pytest.mark.node]

OpenPage = Callable[..., tuple[Page, PageErrors]]


def test_kill_my_pod_on_a_real_node(
    real_stack: RealStack, new_page: OpenPage, artifacts: Path
) -> None:
    page, errors = new_page()
    page.goto(real_stack.forward.url)
    created = start_session(page)
    assert created["pod"]["node"] == NODE_NAME
    wait_connected(page, timeout_ms=30_000)
    wait_pongs(page, 10, timeout_ms=30_000)

    kill_through_dialog(page)
    expect(page.get_by_test_id("pod-name")).not_to_have_text(created["pod"]["name"], timeout=60_000)
    before = pong_count(page)
    wait_pongs(page, before + 10, timeout_ms=60_000)  # pongs resume from the replacement
    durations = check_anatomy(page, created["pod"]["name"])
    TIMINGS["real_node_replacement_anatomy"] = dict(zip(PHASES, durations, strict=True))
    page.get_by_test_id("anatomy").last.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "e2e-real-node.png"), full_page=True)
    errors.check(allow=("WebSocket", "pool/feed"))
