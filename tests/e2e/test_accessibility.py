"""Keyboard use, a phone-sized screen, both colour schemes, contrast."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import PageErrors, start_session, wait_connected, wait_pongs
from tests.e2e.provisioner import Provisioner

pytestmark = pytest.mark.e2e

OpenPage = Callable[..., tuple[Page, PageErrors]]

# WCAG 2 contrast of each visible text element against the first opaque
# background behind it; returns the ones under 4.5:1.
LOW_CONTRAST_JS = """
() => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const bg = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.9)) return c;
    }
    return rgb(getComputedStyle(document.body).backgroundColor);
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility() || el.closest('[disabled]')) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const text = el.textContent.trim().slice(0, 30);
    if (ratio < 4.5) bad.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)} "${text}"`);
  }
  return bad;
}
"""


def focused_testid(page: Page) -> str | None:
    return page.evaluate("() => document.activeElement?.dataset?.testid ?? null")


def tab_to(page: Page, testid: str, limit: int = 20) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused_testid(page) == testid:
            return
    raise AssertionError(f"{testid} not reachable with Tab")


def test_keyboard_only(provisioner: Provisioner, new_page: OpenPage) -> None:
    page, errors = new_page()
    page.goto(provisioner.url)
    tab_to(page, "start")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "no visible focus on the Start button"
    page.keyboard.press("Enter")
    wait_connected(page)
    wait_pongs(page, 3)

    tab_to(page, "kill")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Kill your pod?")
    expect(dialog).to_be_visible()
    assert focused_testid(page) == "kill-confirm-cancel"
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert focused_testid(page) == "kill"
    expect(page.get_by_test_id("event-log")).not_to_contain_text("Kill requested")

    # The timeline is announced politely by screen readers.
    log = page.get_by_test_id("event-log")
    assert log.get_attribute("role") == "log"
    assert log.get_attribute("aria-live") == "polite"
    errors.check()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_screen_and_colour_scheme(
    provisioner: Provisioner, new_page: OpenPage, artifacts: Path, scheme: str
) -> None:
    page, errors = new_page(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        color_scheme=scheme,
    )
    page.goto(provisioner.url)
    start_session(page)
    wait_pongs(page, 20)
    expect(page.get_by_test_id("rtt-last")).not_to_have_text("—")

    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(14, 17, 22)" if scheme == "dark" else "rgb(244, 246, 249)")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"page scrolls sideways by {overflow}px on a phone"
    box = page.get_by_test_id("kill").bounding_box()
    assert box is not None and box["height"] >= 40, "touch target too small"
    assert page.evaluate(LOW_CONTRAST_JS) == []
    page.screenshot(path=str(artifacts / f"e2e-phone-{scheme}.png"), full_page=True)
    errors.check()
