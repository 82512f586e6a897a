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
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from scripts.servers import free_port, launch, log_tail, stop

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "frontend" / "dist"
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

# Figures the tests measured, printed at the end of the run.
TIMINGS: dict[str, Any] = {}


def _require(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("PINGPOD_E2E_REQUIRED") == "1":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


@dataclass
class Provisioner:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def pool(self) -> dict[str, int]:
        with self.client() as c:
            return c.get("/pool").json()

    def log_tail(self, n: int = 3000) -> str:
        return log_tail(self.log, n)


@contextlib.contextmanager
def run_provisioner(
    log_dir: Path, *, port: int | None = None, **overrides: str
) -> Iterator[Provisioner]:
    """Start `python -m services.provisioner` on `port` (default: a free one)
    and wait for /ready.

    Stopped with SIGTERM (the graceful path that also stops its echo
    processes), then SIGKILL if it does not exit in time.
    """
    port = port or free_port()
    # Every page opens a pool feed, and the tests' pages all come from 127.0.0.1.
    env = {"FRONTEND_DIR": str(DIST), "POOL_SIZE": "4", "FEED_PER_IP": "50", **overrides}
    log = log_dir / f"provisioner-{port}.log"
    proc = launch("services.provisioner", port=port, log=log, env=env, ready_path="/ready")
    server = Provisioner(proc=proc, url=f"http://127.0.0.1:{port}", port=port, log=log)
    try:
        # A full warm pool, so the first claim is the warm path the demo is about.
        deadline = time.monotonic() + 30
        while server.pool()["warm"] < int(env["POOL_SIZE"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        yield server
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def provisioner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioner]:
    _require((DIST / "index.html").is_file(), f"{DIST} is not built (make frontend-build)")
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
    _require((DIST / "index.html").is_file(), f"{DIST} is not built (make frontend-build)")

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
    _require(
        shutil.which(CHROMIUM) is not None, f"Chromium not found at {CHROMIUM} (make chromium)"
    )
    # launch() gives every run a fresh temporary profile.
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


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
