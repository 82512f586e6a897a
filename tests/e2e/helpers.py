"""Page helpers for the e2e tests: they read only the page's data-testid hooks; the
page's errors; the figures the tests measured (printed at the end of the run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playwright.sync_api import ConsoleMessage, Page

# Figures the tests measured, printed at the end of the run.
TIMINGS: dict[str, Any] = {}


def start_session(page: Page) -> dict[str, Any]:
    """Click Start and return the body of the POST /session it caused."""
    with page.expect_response(
        lambda r: r.url.endswith("/session") and r.request.method == "POST"
    ) as info:
        page.get_by_test_id("start").click()
    response = info.value
    assert response.status == 201, response.text()
    return response.json()


def pong_count(page: Page) -> int:
    value = page.get_by_test_id("pong-count").get_attribute("data-value")
    return int(value or 0)


def wait_pongs(page: Page, at_least: int, timeout_ms: float = 15_000) -> None:
    page.wait_for_function(
        "n => Number(document.querySelector('[data-testid=pong-count]').dataset.value) >= n",
        arg=at_least,
        timeout=timeout_ms,
    )


def wait_connected(page: Page, timeout_ms: float = 10_000) -> None:
    page.wait_for_function(
        "() => document.querySelector('[data-testid=status]').dataset.link === 'open'",
        timeout=timeout_ms,
    )


def wait_phase(page: Page, phase: str, timeout_ms: float = 10_000) -> None:
    page.wait_for_function(
        "p => document.querySelector('[data-testid=status]').dataset.phase === p",
        arg=phase,
        timeout=timeout_ms,
    )


def performance_gap_ms(page: Page, start_mark: str, end_mark: str) -> float:
    """ms between two performance marks the page set (the latest of each)."""
    return page.evaluate(
        """([a, b]) => {
            const last = (n) => performance.getEntriesByName(n, 'mark').at(-1);
            const s = last(a), e = last(b);
            return s && e ? e.startTime - s.startTime : NaN;
        }""",
        [start_mark, end_mark],
    )


@dataclass
class PageErrors:
    errors: list[str]

    def check(self, *, allow: tuple[str, ...] = ()) -> None:
        """Fail on any error, except those containing one of `allow` (expected ones)."""
        left = [e for e in self.errors if not any(a in e for a in allow)]
        assert not left, "errors in the page:\n" + "\n".join(left)


def watch_errors(page: Page) -> PageErrors:
    """Collect uncaught exceptions and console errors of a page."""
    found = PageErrors(errors=[])

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            found.errors.append(f"console: {msg.text}")

    page.on("pageerror", lambda exc: found.errors.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    return found
