"""The page's node strip while Karpenter adds a node: Chromium against a real
provisioner (Kubernetes backend, under its Role and node reader) whose pool only
this test's NodePool can take. Sessions claimed over HTTP leave the refill's pods
pending; Karpenter's kwok provider adds a node, and the strip shows it appear
with the instance type and capacity type Karpenter chose, and its pool pods.
When the sessions end, Karpenter removes a node they emptied, and the strip shows
it going before it leaves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from playwright.sync_api import Page, expect

from scripts.controlplane import ControlPlane
from tests.e2e.helpers import PageErrors
from tests.e2e.provisioner import DIST, require
from tests.k8s.rig import Rig
from tests.support.polling import wait_for
from tests.support.servers import new_session

from .test_karpenter import DISRUPTION_WAIT, NODE_WAIT, T4G_NAMES, pool_nodes, pool_pods

pytestmark = pytest.mark.e2e

OpenPage = Callable[..., tuple[Page, PageErrors]]
CAPACITY_TEXT = {"spot": "Spot", "on-demand": "on-demand"}
# Every state each node's tile has shown, recorded in the page as the DOM changes:
# a node's last moments on the strip are short, a poll could miss them.
RECORD_STATES = """() => {
  const seen = (window.nodeStates = {});
  const note = () => {
    for (const el of document.querySelectorAll('[data-testid=node]')) {
      const states = (seen[el.dataset.node] ??= []);
      if (states.at(-1) !== el.dataset.state) states.push(el.dataset.state);
    }
  };
  note();
  new MutationObserver(note).observe(document.body, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'],
  });
}"""


def pods_per_node(api: client.ApiClient, namespace: str) -> Counter[str]:
    return Counter(p.spec.node_name for p in pool_pods(api, namespace) if p.spec.node_name)


@pytest.mark.timeout(600)
def test_a_node_karpenter_adds_appears_on_the_strip(
    rig: Rig,
    control_plane: ControlPlane,
    api: client.ApiClient,
    node_pool: str,
    new_page: OpenPage,
    artifacts: Path,
) -> None:
    require((DIST / "index.html").is_file(), f"{DIST} is not built (make frontend-build)")
    server = rig.start(FRONTEND_DIR=str(DIST), POOL_SIZE="3", POOL_HEADROOM="0")
    server.wait_pool(3, timeout=NODE_WAIT)
    before = set(pool_nodes(control_plane, node_pool))
    assert before

    page, errors = new_page()
    page.goto(server.url)
    page.evaluate(RECORD_STATES)
    strip = page.get_by_test_id("node-strip")
    for name in before:  # the nodes there when the page opened, not marked new
        shown = strip.locator(f'[data-testid=node][data-node="{name}"]')
        expect(shown).to_have_count(1, timeout=15_000)
        expect(shown).not_to_have_attribute("data-fresh", "true")
    # The control plane's own kwok nodes are nodes too (no capacity-type label).
    expect(strip.locator('[data-node="kwok-node-0"]')).to_have_attribute("data-capacity", "unknown")

    # Three sessions take the warm pods; the refill's pods do not fit: a node comes.
    sessions = [new_session(server) for _ in range(3)]

    def added() -> set[str]:
        return set(pool_nodes(control_plane, node_pool)) - before

    new = sorted(wait_for("a node for the refill", added, timeout=NODE_WAIT))
    name = new[0]
    node = pool_nodes(control_plane, node_pool)[name]
    labels = node["metadata"]["labels"]
    instance_type = labels["node.kubernetes.io/instance-type"]
    capacity = labels["karpenter.sh/capacity-type"]
    assert instance_type in T4G_NAMES and capacity in CAPACITY_TEXT

    shown = strip.locator(f'[data-testid=node][data-node="{name}"]')
    expect(shown).to_have_count(1, timeout=15_000)
    expect(shown).to_have_attribute("data-fresh", "true")  # it came while the page watched
    expect(shown.get_by_test_id("node-type")).to_have_text(instance_type)
    expect(shown.get_by_test_id("node-capacity")).to_have_text(CAPACITY_TEXT[capacity])
    expect(shown).to_have_attribute("data-capacity", capacity)
    expect(shown).to_have_attribute("data-state", "ready", timeout=NODE_WAIT * 1000)
    # Its count is the pool's pods bound to it, as the API server has them.
    server.wait_pool(3, timeout=NODE_WAIT)

    def counts_match() -> bool:
        on_node = pods_per_node(api, rig.namespace)[name]
        attr = shown.get_by_test_id("node-pods").get_attribute("data-pods")
        return on_node > 0 and attr == str(on_node)

    wait_for("the new node's pods on the strip", counts_match, timeout=30)
    shown.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "e2e-node-strip-karpenter.png"), full_page=True)

    # The sessions end; Karpenter removes a node they emptied, and the strip shows it go.
    peak = set(pool_nodes(control_plane, node_pool))
    for session in sessions:
        ended = httpx.delete(server.url + f"/session/{session['session_id']}")
        assert ended.status_code == 204
    removed = wait_for(
        "an emptied node to be removed",
        lambda: peak - set(pool_nodes(control_plane, node_pool)),
        timeout=DISRUPTION_WAIT,
        interval=1,
    )
    for name in removed:
        expect(strip.locator(f'[data-node="{name}"]')).to_have_count(0, timeout=15_000)
        states = page.evaluate("name => window.nodeStates[name]", name)
        assert states[-1] == "gone", (name, states)  # seen going before it left the strip
        assert states[0] != "gone"
    errors.check(allow=("pool/feed",))
