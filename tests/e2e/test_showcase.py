"""The showcase in Chromium: the live pool grid, the replacement anatomy after a
kill, and "Kill my gateway" with two replicas behind a proxy that plays the
ALB (tests/k8s/lb.py) on the test control plane."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from playwright.sync_api import Locator, Page, expect

from scripts.controlplane import ControlPlane
from tests.e2e.helpers import (
    TIMINGS,
    PageErrors,
    pong_count,
    start_session,
    wait_connected,
    wait_pongs,
)
from tests.e2e.provisioner import DIST, Provisioner, require
from tests.k8s.lb import RoundRobinProxy
from tests.k8s.rig import Rig, make_rig
from tests.support.polling import wait_for
from tests.support.servers import Server, start_server

pytestmark = pytest.mark.e2e

OpenPage = Callable[..., tuple[Page, PageErrors]]
PHASES = ["created", "scheduled", "started", "ready", "connected", "first-pong"]
DURATION = re.compile(r"^(< )?\d+(\.\d+)? m?s( \u2013 \d+(\.\d+)? m?s)?$")


def tile(page: Page, pod: str) -> Locator:
    return page.locator(f'[data-testid=pool-tile][data-pod="{pod}"]')


def kill_through_dialog(page: Page) -> None:
    page.get_by_test_id("kill").click()
    page.get_by_test_id("kill-confirm").click()


def check_anatomy(page: Page, first_pod: str) -> list[str]:
    """The last kill's anatomy: every phase, in order, each with a duration and unit."""
    anatomy = page.get_by_test_id("anatomy").last
    expect(anatomy).to_be_visible(timeout=15_000)
    phases = anatomy.locator("[data-phase]")
    assert [phases.nth(i).get_attribute("data-phase") for i in range(phases.count())] == PHASES
    durations = [t.strip() for t in anatomy.locator(".anatomy-dur").all_inner_texts()]
    assert all(DURATION.match(d) for d in durations), durations
    entry = page.get_by_test_id("event-log").locator("li", has=anatomy)
    # About the replacement, not the killed pod. Its name may start with the killed
    # one's: a bare warm pod is named like its slot, the ReplicaSet's pods after it.
    expect(entry).to_contain_text(re.compile(r"How replacement pod \S+ started"))
    named = re.search(r"How replacement pod (\S+) started", entry.inner_text())
    assert named is not None and named.group(1) != first_pod
    return durations


def test_pool_grid_follows_my_claim_and_replacement(
    provisioner: Provisioner, new_page: OpenPage, artifacts: Path
) -> None:
    page, errors = new_page()
    page.goto(provisioner.url)
    grid = page.get_by_test_id("pool-grid")
    expect(grid.locator("[data-testid=pool-tile][data-state=warm]")).to_have_count(
        provisioner.pool()["warm"], timeout=10_000
    )
    expect(grid.locator("[data-mine]")).to_have_count(0)
    expect(page.get_by_test_id("kill-gateway")).to_have_count(0)  # not offered locally

    created = start_session(page)
    first_pod = created["pod"]["name"]
    wait_connected(page)
    wait_pongs(page, 5)
    expect(page.get_by_test_id("kill-gateway")).to_have_count(0)
    mine = tile(page, first_pod)
    expect(mine).to_have_attribute("data-state", "assigned")
    expect(mine).to_have_attribute("data-mine", "true")
    expect(grid.locator("[data-mine=true]")).to_have_count(1)
    # The pool refills after the claim: four warm tiles again, none of them mine.
    expect(grid.locator("[data-state=warm]")).to_have_count(4, timeout=15_000)
    page.screenshot(path=str(artifacts / "e2e-pool-grid.png"), full_page=True)

    kill_through_dialog(page)
    expect(page.get_by_test_id("pod-name")).not_to_have_text(first_pod, timeout=15_000)
    new_pod = page.get_by_test_id("pod-name").inner_text()
    # My replacement appears as my tile; the killed pod's leaves the grid.
    expect(tile(page, new_pod)).to_have_attribute("data-state", "assigned", timeout=10_000)
    expect(tile(page, new_pod)).to_have_attribute("data-mine", "true")
    expect(tile(page, first_pod)).to_have_count(0, timeout=10_000)
    expect(grid.locator("[data-mine=true]")).to_have_count(1)

    durations = check_anatomy(page, first_pod)
    TIMINGS["local_replacement_anatomy"] = dict(zip(PHASES, durations, strict=True))
    page.get_by_test_id("anatomy").last.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "e2e-anatomy.png"), full_page=True)

    page.get_by_test_id("end").click()
    expect(grid.locator("[data-mine]")).to_have_count(0)
    errors.check()


# --- two replicas on the test control plane ---------------------------------


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[Server]:
    server = start_server("services.echo", tmp_path, {"POD_NAME": "kwok-data-path"})
    yield server
    server.stop()


@pytest.fixture
def two_replicas(
    control_plane: ControlPlane,
    api: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    echo: Server,
) -> Iterator[tuple[Rig, list[Server], RoundRobinProxy]]:
    require((DIST / "index.html").is_file(), f"{DIST} is not built (make frontend-build)")
    rig = make_rig(control_plane, api, namespace, tmp_path, echo)
    env = {
        "FRONTEND_DIR": str(DIST),
        "ALLOW_GATEWAY_KILL": "true",
        "DRAIN_DELAY": "1",
        "POOL_SIZE": "3",
    }
    servers = [rig.start(**env), rig.start(**env)]
    servers[0].wait_pool(3)
    for server in servers:  # each has counted the other: the button is offered
        wait_for(
            "two live replicas",
            lambda s=server: httpx.get(s.url + "/config").json()["gateway_kill"],
            timeout=15,
        )
    proxy = RoundRobinProxy([s.port for s in servers]).start()
    try:
        yield rig, servers, proxy
    finally:
        proxy.stop()
        rig.stop_all()


def test_kill_my_gateway_through_two_replicas(
    two_replicas: tuple[Rig, list[Server], RoundRobinProxy],
    new_page: OpenPage,
    artifacts: Path,
) -> None:
    rig, servers, proxy = two_replicas
    page, errors = new_page()
    page.goto(proxy.url)
    expect(page.get_by_test_id("pool-grid").locator("[data-state=warm]")).to_have_count(
        3, timeout=15_000
    )
    created = start_session(page)
    wait_connected(page)
    wait_pongs(page, 10)
    expect(tile(page, created["pod"]["name"])).to_have_attribute("data-mine", "true")

    # A pod kill on Kubernetes first: the anatomy's times are whole seconds, shown as ranges.
    kill_through_dialog(page)
    expect(page.get_by_test_id("pod-name")).not_to_have_text(created["pod"]["name"], timeout=20_000)
    durations = check_anatomy(page, created["pod"]["name"])
    TIMINGS["kubernetes_replacement_anatomy"] = dict(zip(PHASES, durations, strict=True))
    expect(page.get_by_test_id("event-log")).to_contain_text("records these times to the second")

    # Then the gateway: offered here (GET /config), behind its own confirm.
    kill_gateway = page.get_by_test_id("kill-gateway")
    expect(kill_gateway).to_be_enabled()
    log = page.get_by_test_id("event-log")
    before = pong_count(page)
    kill_gateway.click()
    page.get_by_test_id("kill-gateway-confirm").click()
    expect(log).to_contain_text("Gateway restart requested")
    expect(log).to_contain_text("reconnecting through another replica", timeout=20_000)
    expect(log).to_contain_text("Reconnected to the gateway", timeout=20_000)
    expect(log).to_contain_text(re.compile(r"Now through gateway replica provisioner-\d+"))
    wait_connected(page, timeout_ms=20_000)
    wait_pongs(page, before + 20, timeout_ms=20_000)  # the session carries on
    expect(log.locator("li").last).to_contain_text("Pongs resumed", timeout=10_000)

    # One replica exited cleanly; the other serves; the session is the same.
    exited = wait_for(
        "the drained replica to exit", lambda: [s for s in servers if s.proc.poll() is not None]
    )
    assert len(exited) == 1 and exited[0].proc.returncode == 0
    (serving,) = (s for s in servers if s.proc.poll() is None)
    assert page.get_by_test_id("status").get_attribute("data-phase") == "live"
    with serving.client() as http:
        assert http.get(f"/session/{created['session_id']}").status_code == 200
    # The Deployment would start the replica again; here the harness does.
    restarted = rig.start(
        **{k: v for k, v in exited[0].env.items() if k != "POD_NAME"},
    )
    proxy.set_ports([serving.port, restarted.port])
    page.screenshot(path=str(artifacts / "e2e-gateway-kill.png"), full_page=True)
    errors.check(allow=("WebSocket", "pool/feed"))
