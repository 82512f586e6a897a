"""The demo's main path in a real browser: Start, live pongs, kill the pod,
watch the replacement take over."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import (
    TIMINGS,
    PageErrors,
    performance_gap_ms,
    pong_count,
    start_session,
    wait_connected,
    wait_pongs,
)
from tests.e2e.provisioner import Provisioner

pytestmark = pytest.mark.e2e

OpenPage = Callable[..., tuple[Page, PageErrors]]


def test_no_session_until_start_is_clicked(provisioner: Provisioner, new_page: OpenPage) -> None:
    before = provisioner.pool()["assigned"]
    page, errors = new_page()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(provisioner.url)
    expect(page.get_by_test_id("start")).to_be_enabled()
    expect(page.get_by_test_id("status")).to_contain_text("press Start")
    # The pool panel polls on its own; give the page time to misbehave.
    expect(page.get_by_test_id("pool-warm")).to_have_text(re.compile(r"^\d+$"))
    page.wait_for_timeout(1500)
    assert posts == []
    assert provisioner.pool()["assigned"] == before
    errors.check()


def test_start_kill_and_recover(
    provisioner: Provisioner, new_page: OpenPage, artifacts: Path
) -> None:
    page, errors = new_page()
    page.goto(provisioner.url)

    created = start_session(page)
    assert created["ws_url"].startswith("/session/")
    wait_connected(page)
    first_pod = created["pod"]["name"]
    expect(page.get_by_test_id("pod-name")).to_have_text(first_pod)
    wait_pongs(page, 20)
    page.wait_for_function("() => document.querySelector('[data-testid=chart]').dataset.plotted")
    TIMINGS["start_click_to_first_plotted_pong_ms"] = round(
        performance_gap_ms(page, "pingpod:start", "pingpod:first-plot"), 1
    )
    TIMINGS["claim_path"] = "warm" if created["warm"] else "cold"
    TIMINGS["server_assign_ms"] = created["assign_ms"]

    last = page.get_by_test_id("rtt-last")
    expect(last).to_have_text(re.compile(r"^\d+(\.\d+)? m?s$"))
    assert float(last.get_attribute("data-value") or "nan") > 0
    expect(page.get_by_test_id("replacements")).to_have_text("0")
    expect(page.get_by_test_id("claim")).to_contain_text("warm" if created["warm"] else "cold")
    expect(page.get_by_test_id("pool-assigned")).not_to_have_text("0", timeout=10_000)
    page.screenshot(path=str(artifacts / "e2e-session.png"), full_page=True)

    # Kill, through the in-page confirm.
    page.get_by_test_id("kill").click()
    dialog = page.get_by_role("dialog", name="Kill your pod?")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("kill-confirm-cancel")).to_be_focused()
    pongs_at_kill = pong_count(page)
    page.get_by_test_id("kill-confirm").click()
    expect(dialog).to_be_hidden()

    log = page.get_by_test_id("event-log")
    expect(page.get_by_test_id("pod-name")).not_to_have_text(first_pod, timeout=15_000)
    new_pod = page.get_by_test_id("pod-name").inner_text()
    assert new_pod.startswith("echo-")
    expect(log).to_contain_text(f"Kill requested for pod {first_pod}")
    expect(log).to_contain_text(f"Pod {first_pod} killed")
    expect(log).to_contain_text("Gateway lost its connection")
    expect(log).to_contain_text(f"Gateway connected to pod {new_pod}")
    expect(log).to_contain_text(f"Pongs resumed from pod {new_pod}")
    expect(page.get_by_test_id("replacements")).to_have_text("1", timeout=15_000)

    # Every step of the incident is timed from the kill click.
    since = page.get_by_test_id("event-since").all_inner_texts()
    assert len(since) >= 5, since
    recovery = since[-1]
    assert re.fullmatch(r"\+\d+(\.\d+)? m?s", recovery), since
    TIMINGS["kill_click_to_pongs_resumed"] = recovery

    # The chart goes on with the new pod.
    wait_pongs(page, pongs_at_kill + 20)
    expect(page.get_by_test_id("status")).to_contain_text(f"Connected to pod {new_pod}")
    page.screenshot(path=str(artifacts / "e2e-after-kill.png"), full_page=True)
    errors.check()
