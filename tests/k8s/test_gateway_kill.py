"""Kill my gateway, on the test control plane: two provisioner replicas (real
processes, Kubernetes backend) behind a round-robin proxy that plays the ALB
(tests/k8s/lb.py). The replica holding the visitor's WebSocket fails /ready
first, closes the socket with 1012 and exits cleanly; the visitor reconnects
through the other replica and the session carries on. The request reaches
the holder through the cluster, whichever replica it was sent to."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets
from kubernetes import client
from websockets.asyncio.client import connect

from tests.conftest import wait_for
from tests.services.helpers import Server, is_event
from tests.services.wsutil import until

from .lb import RoundRobinProxy
from .rig import Rig

pytestmark = pytest.mark.k8s

DRAIN_DELAY = 2.0  # seconds between /ready failing and the sockets closing
ON = {
    "ALLOW_GATEWAY_KILL": "true",
    "DRAIN_DELAY": str(DRAIN_DELAY),
    "POOL_SIZE": "2",
}


@pytest.fixture
def replicas(rig: Rig) -> Iterator[tuple[list[Server], RoundRobinProxy]]:
    servers = [rig.start(**ON), rig.start(**ON)]
    servers[0].wait_pool(2)
    for server in servers:  # each has counted the other (the roster of Leases)
        wait_for("two live replicas", lambda s=server: offered(s), timeout=15)
    proxy = RoundRobinProxy([s.port for s in servers]).start()
    yield servers, proxy
    proxy.stop()


def offered(server: Server) -> bool:
    return bool(httpx.get(server.url + "/config", timeout=5).json()["gateway_kill"])


def ready(server: Server) -> int:
    try:
        return httpx.get(server.url + "/ready", timeout=2).status_code
    except httpx.HTTPError:
        return 0


async def test_the_replica_holding_the_socket_drains_and_the_session_carries_on(
    replicas: tuple[list[Server], RoundRobinProxy],
) -> None:
    servers, proxy = replicas
    by_name = {s.env["POD_NAME"]: s for s in servers}
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as http:
        assert (await http.get("/config")).json() == {"gateway_kill": True}
        session = (await http.post("/session")).json()
        sid, pod = session["session_id"], session["pod"]["name"]
        async with connect(proxy.ws + session["ws_url"]) as ws:
            hello = await until(ws, is_event("upstream_ready"))
            holder = by_name[hello["gateway"]]
            (other,) = (s for s in servers if s is not holder)
            # Asked of the replica that does not hold the socket: the cluster carries it.
            asked = httpx.delete(other.url + f"/session/{sid}/gateway", timeout=10)
            assert asked.status_code == 202, asked.text
            assert asked.json() == {"gateway": "draining", "drain_delay": DRAIN_DELAY}

            # First /ready fails while the socket is still open and relaying...
            wait_for("the holder's /ready to fail", lambda: ready(holder) == 503, timeout=10)
            draining = httpx.get(holder.url + "/ready").json()["error"]
            assert draining == "draining"
            doc = httpx.get(holder.url + "/openapi.json").json()
            refusal = doc["paths"]["/ready"]["get"]["responses"]["503"]["content"]
            assert draining in refusal["application/json"]["schema"]["properties"]["error"]["enum"]
            wait_for("the proxy to stop routing to it", lambda: holder.port not in proxy.ready)
            await until(ws, lambda f: f.get("type") == "pong")  # still relaying
            assert ready(other) == 200
            # ...then the socket closes with 1012 (service restart).
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await until(ws, lambda f: False, timeout=DRAIN_DELAY + 15)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1012

        # The replica exits cleanly, as under the kubelet's SIGTERM.
        assert holder.proc.wait(timeout=20) == 0
        log = holder.log.read_text()
        assert "replica_draining" in log and "replica_closing" in log
        assert "Traceback" not in log

        # The page's reconnect goes through the proxy to the other replica: same session, pod.
        async with connect(proxy.ws + session["ws_url"]) as ws:
            again = await until(ws, is_event("upstream_ready"))
            assert again["gateway"] == other.env["POD_NAME"]
            assert again["pod"] == pod
            # (kwok pods' data path is one local echo server, which names itself.)
            await until(ws, lambda f: f.get("type") == "pong")
        status = await http.get(f"/session/{sid}")
        assert status.status_code == 200 and status.json()["pod"]["name"] == pod
        await http.delete(f"/session/{sid}")


def test_gateway_kill_bounds_and_refusals(
    rig: Rig, replicas: tuple[list[Server], RoundRobinProxy]
) -> None:
    servers, proxy = replicas
    with httpx.Client(base_url=proxy.url, timeout=30) as http:
        # (The limits are each replica's own: this one is asked nothing else.)
        unknown = httpx.delete(servers[1].url + "/session/no-such-session/gateway")
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "session_not_found"

        session = http.post("/session").json()
        sid = session["session_id"]
        # No socket is open anywhere: the request is accepted, and nobody drains.
        first = httpx.delete(servers[0].url + f"/session/{sid}/gateway", timeout=10)
        assert first.status_code == 202
        again = httpx.delete(servers[0].url + f"/session/{sid}/gateway", timeout=10)
        assert again.status_code == 429
        assert again.json() == {
            "error": "rate_limited",
            "detail": "this session restarted a gateway a moment ago; wait",
        }
        assert int(again.headers["Retry-After"]) >= 1
        # Per address: two tries per interval, whatever the session.
        other = http.post("/session").json()
        third = httpx.delete(servers[0].url + f"/session/{other['session_id']}/gateway")
        assert third.status_code == 429
        assert "your address" in third.json()["detail"]

        time.sleep(DRAIN_DELAY + 1)
        assert [ready(s) for s in servers] == [200, 200]
        # The request was recorded on the session's ReplicaSet, where every replica saw it.
        with rig.cp.api_client() as admin:
            (rs,) = (
                rs
                for rs in client.AppsV1Api(admin)
                .list_namespaced_replica_set(rig.namespace, label_selector="session")
                .items
                if rs.metadata and (rs.metadata.annotations or {}).get("pingpod.dev/gateway-drain")
            )
        assert rs.metadata is not None and rs.metadata.labels is not None

    # Off when not allowed: 403, and nothing changes.
    off = rig.start()
    for server in (off,):
        with server.client() as http:
            assert http.get("/config").json() == {"gateway_kill": False}
            refused = http.delete(f"/session/{sid}/gateway")
            assert refused.status_code == 403
            assert refused.json()["error"] == "gateway_kill_off"
            assert http.get("/ready").status_code == 200


def roster(rig: Rig) -> set[str]:
    """Holders of the roster's Leases (one per live or not yet collected replica)."""
    with rig.cp.api_client() as admin:
        leases = client.CoordinationV1Api(admin).list_namespaced_lease(
            rig.namespace, label_selector="pingpod.dev/provisioner-roster"
        )
    return {
        lease.spec.holder_identity
        for lease in leases.items
        if lease.spec and lease.spec.holder_identity
    }


def test_gateway_kill_follows_the_live_replica_count(rig: Rig) -> None:
    """Offered from two live replicas, counted from their Leases, not configured."""
    first = rig.start(**ON)
    wait_for("the first replica's roster Lease", lambda: first.env["POD_NAME"] in roster(rig))
    assert not offered(first)
    with first.client() as http:
        refused = http.delete("/session/no-such-session/gateway")
        assert refused.status_code == 403
        assert "one serves now" in refused.json()["detail"]

    second = rig.start(**ON)
    for server in (first, second):
        wait_for("two live replicas", lambda s=server: offered(s), timeout=15)

    # A replica that stops hands its Lease back: the count drops without waiting.
    second.stop()  # SIGTERM: uvicorn's graceful shutdown, then the signal's own exit
    assert "Traceback" not in second.log.read_text()
    assert second.env["POD_NAME"] not in roster(rig)
    wait_for("one live replica", lambda: not offered(first), timeout=15)

    # One that crashes is counted out once its Lease expires (LEASE_DURATION 3 s).
    third = rig.start(**ON)
    wait_for("two live replicas again", lambda: offered(first), timeout=15)
    third.stop(signal.SIGKILL)
    assert third.env["POD_NAME"] in roster(rig)
    wait_for("the crashed replica counted out", lambda: not offered(first), timeout=20)


def test_pool_feed_follows_the_watch_cache(rig: Rig) -> None:
    """Tiles come from the Kubernetes backend's watch cache: a claim, the refill,
    a kill and its replacement, with the start phases of the replacement."""
    server = rig.start(POOL_SIZE="2")
    server.wait_pool(2)
    with server.client() as http, http.stream("GET", "/pool/feed") as feed:
        lines = feed.iter_lines()

        def next_event() -> dict[str, object]:
            name, data = "", ""
            for line in lines:
                if not line and data:
                    body = json.loads(data)
                    body["event"] = name
                    return body
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data += line.split(":", 1)[1].strip()
            raise EOFError

        tiles: dict[str, str] = {}

        def follow(pred: object, timeout: float = 20) -> None:
            deadline = time.monotonic() + timeout
            while not pred(tiles):  # type: ignore[operator]
                assert time.monotonic() < deadline, tiles
                event = next_event()
                if event["event"] == "snapshot":
                    tiles.clear()
                    tiles.update({t["pod"]: t["state"] for t in event["tiles"]})  # type: ignore[union-attr]
                else:
                    for pod in event["remove"]:  # type: ignore[union-attr]
                        tiles.pop(pod, None)
                    tiles.update({t["pod"]: t["state"] for t in event["set"]})  # type: ignore[union-attr]

        follow(lambda t: list(t.values()).count("warm") >= 2)
        session = http.post("/session").json()
        mine = session["pod"]["name"]
        follow(lambda t: t.get(mine) == "assigned")
        follow(lambda t: list(t.values()).count("warm") >= 2)
        killed_at = time.time()
        assert http.delete(f"/session/{session['session_id']}/pod").status_code == 202
        follow(lambda t: t.get(mine) in (None, "terminating"))

        def replacement() -> dict[str, object] | None:
            pod = http.get(f"/session/{session['session_id']}").json()["pod"]
            return pod if pod and pod["name"] != mine and pod["ready"] else None

        new = wait_for("the replacement to be Ready", replacement)
        follow(lambda t: t.get(str(new["name"])) == "assigned")
        phases = new["phases"]
        assert isinstance(phases, dict)
        assert phases["resolution"] == 1.0
        # Whole seconds from the API server, in order, none before the kill's second.
        order = [phases[p] for p in ("created", "scheduled", "started", "ready")]
        assert all(isinstance(t, float) and t == int(t) for t in order), phases
        assert order == sorted(order) and order[0] >= int(killed_at)
