"""How sessions end, and what the page says: the visitor ends it, closes the
page, the server ends it, or the demo is at capacity."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import PageErrors, start_session, wait_connected, wait_phase, wait_pongs
from tests.e2e.provisioner import Provisioner

pytestmark = pytest.mark.e2e

OpenPage = Callable[..., tuple[Page, PageErrors]]
Factory = Callable[..., contextlib.AbstractContextManager[Provisioner]]


def wait_assigned(server: Provisioner, expected: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while (got := server.pool()["assigned"]) != expected:
        assert time.monotonic() < deadline, f"assigned={got}, expected {expected}"
        time.sleep(0.1)


def test_end_session_then_start_a_new_one(provisioner: Provisioner, new_page: OpenPage) -> None:
    page, errors = new_page()
    page.goto(provisioner.url)
    first = start_session(page)
    wait_pongs(page, 5)
    page.get_by_test_id("end").click()
    wait_phase(page, "ended")
    expect(page.get_by_test_id("status")).to_contain_text("You ended the session")
    with provisioner.client() as c:
        assert c.get(f"/session/{first['session_id']}").status_code == 404

    start = page.get_by_test_id("start")
    expect(start).to_have_text("Start a new session")
    second = start_session(page)
    assert second["session_id"] != first["session_id"]
    wait_connected(page)
    expect(page.get_by_test_id("pod-name")).to_have_text(second["pod"]["name"])
    expect(page.get_by_test_id("replacements")).to_have_text("0")
    errors.check()


def test_leaving_the_page_ends_the_session(provisioner: Provisioner, new_page: OpenPage) -> None:
    page, errors = new_page()
    page.goto(provisioner.url)
    created = start_session(page)
    wait_pongs(page, 3)
    # Navigating away fires pagehide: the page DELETEs its session with a
    # keepalive fetch, long before the server's idle timeout would reap it.
    page.goto("about:blank")
    deadline = time.monotonic() + 10
    with provisioner.client() as c:
        while c.get(f"/session/{created['session_id']}").status_code != 404:
            assert time.monotonic() < deadline, "session still alive after the page left"
            time.sleep(0.1)
    errors.check()


def test_session_ended_by_the_server(provisioner: Provisioner, new_page: OpenPage) -> None:
    page, errors = new_page()
    page.goto(provisioner.url)
    created = start_session(page)
    wait_pongs(page, 3)
    with provisioner.client() as c:
        assert c.delete(f"/session/{created['session_id']}").status_code == 204
    # The gateway closes the socket with 4404; the page says so and offers a new one.
    wait_phase(page, "ended")
    expect(page.get_by_test_id("status")).to_contain_text("Your session has ended")
    expect(page.get_by_test_id("start")).to_be_enabled()
    expect(page.get_by_test_id("kill")).to_have_count(0)
    errors.check()


def test_at_capacity_shows_the_server_message_and_a_countdown(
    provisioner_factory: Factory, new_page: OpenPage
) -> None:
    with provisioner_factory(MAX_SESSIONS="1", POOL_SIZE="1") as server:
        holder, holder_errors = new_page()
        holder.goto(server.url)
        start_session(holder)
        wait_connected(holder)

        page, errors = new_page()
        page.goto(server.url)
        with page.expect_response(lambda r: r.url.endswith("/session")) as info:
            page.get_by_test_id("start").click()
        response = info.value
        assert response.status == 429
        detail = response.json()["detail"]
        retry_after = int(response.headers["retry-after"])

        message = page.get_by_test_id("limit-message")
        expect(message).to_contain_text(detail)
        countdown = page.get_by_test_id("retry-countdown")
        expect(countdown).to_have_text(re.compile(r"^\d+$"))
        assert 1 <= int(countdown.inner_text()) <= retry_after
        start = page.get_by_test_id("start")
        expect(start).to_be_disabled()
        expect(start).to_have_text(re.compile(r"Try again in \d+ s"))
        expect(page.get_by_test_id("status")).to_contain_text("Retry in")

        # Free the slot; once the countdown runs out the visitor may retry.
        holder.get_by_test_id("end").click()
        wait_phase(holder, "ended")
        expect(start).to_be_enabled(timeout=(retry_after + 2) * 1000)
        expect(start).to_have_text("Start a new session")
        start_session(page)
        wait_connected(page)
        # Chromium logs every non-2xx fetch; the 429 was the point of the test.
        errors.check(allow=("status of 429",))
        holder_errors.check()


def test_gateway_restart_reconnects_then_reports_the_session_gone(
    provisioner_factory: Factory, new_page: OpenPage
) -> None:
    with provisioner_factory() as server:
        port = server.port
        page, errors = new_page()
        page.goto(server.url)
        start_session(page)
        wait_pongs(page, 3)
    # The provisioner stopped (SIGTERM: the gateway closes with 1001): the page
    # says it is reconnecting, with backoff, and keeps the chart's clock going.
    status = page.get_by_test_id("status")
    expect(status).to_have_attribute("data-link", "reconnecting")
    expect(status).to_contain_text(re.compile(r"Reconnecting in \d+ s \(attempt \d+\)"))
    expect(page.get_by_test_id("event-log")).to_contain_text("reconnecting")
    # A new provisioner on the same address knows nothing of the session
    # (the local backend keeps sessions in memory): the page finds out and
    # offers a new one.
    with provisioner_factory(port=port):
        wait_phase(page, "ended", timeout_ms=30_000)
        expect(status).to_contain_text("Your session has ended")
        expect(page.get_by_test_id("start")).to_be_enabled()
    # Failed fetches and upgrades while the server was down are expected noise.
    errors.check(allow=("Failed to load resource", "WebSocket connection to"))
