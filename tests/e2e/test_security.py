"""The page under its own Content-Security-Policy: a whole session (Start,
pongs, kill, recovery, End) raises no violation, and the page response
carries the security headers."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.e2e.helpers import (
    PageErrors,
    pong_count,
    start_session,
    wait_connected,
    wait_phase,
    wait_pongs,
)
from tests.e2e.provisioner import Provisioner

pytestmark = pytest.mark.e2e

OpenPage = Callable[..., tuple[Page, PageErrors]]

# Runs before the page's own scripts: records every violation the browser reports.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI} at ${where}`);
}, true);
"""


def violations(page: Page) -> list[str]:
    return page.evaluate("() => window.__cspViolations")


def test_a_whole_session_raises_no_csp_violation(
    provisioner: Provisioner, new_page: OpenPage
) -> None:
    page, errors = new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    csp_console: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text:
            csp_console.append(msg.text)

    page.on("console", on_console)

    response = page.goto(provisioner.url)
    assert response is not None and response.status == 200
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe" not in csp
    assert f"ws://127.0.0.1:{provisioner.port}" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-cache"

    created = start_session(page)
    wait_connected(page)
    wait_pongs(page, 10)
    page.wait_for_function("() => document.querySelector('[data-testid=chart]').dataset.plotted")
    first_pod = created["pod"]["name"]
    page.get_by_test_id("kill").click()
    at_kill = pong_count(page)
    page.get_by_test_id("kill-confirm").click()
    expect(page.get_by_test_id("pod-name")).not_to_have_text(first_pod, timeout=15_000)
    wait_pongs(page, at_kill + 10)
    page.get_by_test_id("end").click()
    wait_phase(page, "ended")

    assert violations(page) == []
    assert csp_console == []
    errors.check()

    # The recorder works: an inline script, which the policy forbids, is
    # blocked and reported.
    page.evaluate(
        """() => {
            const s = document.createElement('script');
            s.textContent = 'window.__inlineRan = true';
            document.body.append(s);
        }"""
    )
    page.wait_for_function("() => window.__cspViolations.length > 0")
    assert page.evaluate("() => window.__inlineRan === undefined")
    (reported,) = violations(page)
    assert reported.startswith("script-src")
    # The console message follows the event: Playwright delivers it while it waits.
    deadline = time.monotonic() + 10
    while not csp_console:
        assert time.monotonic() < deadline, "the blocked script left no console message"
        page.wait_for_timeout(50)
