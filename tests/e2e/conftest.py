"""End-to-end fixtures: the real provisioner (local backend) as a subprocess
serving the built frontend, and the page in Debian's headless Chromium driven
by Playwright.

Prerequisites (`make test-e2e` provides them): `frontend/dist` built and
Chromium at /usr/bin/chromium (or $PINGPOD_CHROMIUM). Without them the tests
are skipped, unless PINGPOD_E2E_REQUIRED=1 (as make sets it), where a missing
prerequisite is an error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.e2e.helpers import TIMINGS, PageErrors, watch_errors
from tests.e2e.provisioner import DIST, ROOT, Provisioner, require, run_provisioner

ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("PINGPOD_CHROMIUM", "/usr/bin/chromium")
# Chromium flags for this sandbox: no sandbox as root, and none of the
# background traffic a closed network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def provisioner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioner]:
    require((DIST / "index.html").is_file(), f"{DIST} is not built (make frontend-build)")
    # Several tests claim sessions from one address: lift the per-IP rate
    # limit above what the suite needs (the limiter has its own tests).
    with run_provisioner(
        tmp_path_factory.mktemp("e2e"), RATE_LIMIT_BURST="50", RATE_LIMIT_PER_MINUTE="600"
    ) as server:
        yield server


@pytest.fixture(scope="session")
def provisioner_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., contextlib.AbstractContextManager[Provisioner]]:
    """Start an extra provisioner with other settings (e.g. MAX_SESSIONS=1)."""
    require((DIST / "index.html").is_file(), f"{DIST} is not built (make frontend-build)")

    def start(
        *, port: int | None = None, **overrides: str
    ) -> contextlib.AbstractContextManager[Provisioner]:
        return run_provisioner(tmp_path_factory.mktemp("e2e-extra"), port=port, **overrides)

    return start


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    require(shutil.which(CHROMIUM) is not None, f"Chromium not found at {CHROMIUM} (make chromium)")
    # launch() gives every run a fresh temporary profile.
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., tuple[Page, PageErrors]]]:
    """Open pages in fresh browser contexts; closed (ending their sessions) afterwards."""
    contexts = []

    def open_page(**context_options: Any) -> tuple[Page, PageErrors]:
        ctx = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **context_options})
        contexts.append(ctx)
        page = ctx.new_page()
        return page, watch_errors(page)

    yield open_page
    for ctx in contexts:
        with contextlib.suppress(Exception):
            ctx.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("pingpod e2e timings")
    for key, value in TIMINGS.items():
        terminalreporter.write_line(f"{key}: {value}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "e2e-timings.json").write_text(json.dumps(TIMINGS, indent=2) + "\n")
