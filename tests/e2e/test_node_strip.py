"""The node strip in Chromium, local backend: the machine is the one node, with
its host name, its architecture, on-demand, and as many pods as the provisioner
has echo processes (counted here from /proc, not from the page's feed)."""

from __future__ import annotations

import platform
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import PageErrors, start_session, wait_connected
from tests.e2e.provisioner import Provisioner
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e

OpenPage = Callable[..., tuple[Page, PageErrors]]


def echo_children(pid: int) -> int:
    """The echo-server processes whose parent is `pid`, from /proc."""
    found = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # it exited meanwhile
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"services.echo" in cmdline:
            found += 1
    return found


def shown_pods(page: Page) -> int:
    node = page.get_by_test_id("node-strip").get_by_test_id("node")
    return int(node.get_by_test_id("node-pods").get_attribute("data-pods") or -1)


def test_the_machine_is_the_one_node_with_its_pods(
    provisioner: Provisioner, new_page: OpenPage, artifacts: Path
) -> None:
    page, errors = new_page()
    page.goto(provisioner.url)
    strip = page.get_by_test_id("node-strip")
    node = strip.get_by_test_id("node")
    expect(node).to_have_count(1, timeout=10_000)
    host = socket.gethostname()
    expect(node).to_have_attribute("data-node", host)
    expect(node.get_by_test_id("node-name")).to_have_text(host)
    expect(node.get_by_test_id("node-type")).to_have_text(platform.machine())
    expect(node.get_by_test_id("node-capacity")).to_have_text("on-demand")
    expect(node).to_have_attribute("data-state", "ready")
    expect(node).not_to_have_attribute("data-fresh", "true")  # there when the page opened

    # The count is the machine's echo processes: equal once both settle.
    pid = provisioner.proc.pid
    wait_for("pods on the node", lambda: shown_pods(page) == echo_children(pid), timeout=15)
    before = shown_pods(page)
    expect(node.get_by_test_id("node-pods")).to_have_text(f"{before} pods")

    # A claim takes a warm pod and the pool starts another: one pod more on the node.
    start_session(page)
    wait_connected(page)
    wait_for("the refill on the node", lambda: shown_pods(page) > before, timeout=15)
    wait_for("pods on the node", lambda: shown_pods(page) == echo_children(pid), timeout=15)
    page.get_by_test_id("node-strip").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "e2e-node-strip.png"), full_page=True)
    errors.check()
