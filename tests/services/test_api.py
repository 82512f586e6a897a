"""The session API over HTTP against a real provisioner with the local backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import Server, StartProvisioner


def test_claim_returns_a_warm_pod(provisioner: Server) -> None:
    with provisioner.client() as client:
        response = client.post("/session")
        assert response.status_code == 201
        body = response.json()
        assert body["warm"] is True
        assert body["pod"]["name"].startswith("echo-")
        assert body["pod"]["node"]
        assert body["assign_ms"] >= 0  # its size is bench.sessions' business
        assert body["ws_url"] == f"/session/{body['session_id']}/ws"
        assert len(body["session_id"]) >= 22  # >= 128 bits

        status = client.get(f"/session/{body['session_id']}").json()
        assert status["pod"]["name"] == body["pod"]["name"]
        assert status["pod"]["ready"] is True and status["pod"]["phase"] == "Running"
        assert status["replacements"] == 0
        assert status["expires_at"] > status["created_at"]

        assert client.delete(f"/session/{body['session_id']}").status_code == 204
        gone = client.get(f"/session/{body['session_id']}")
        assert gone.status_code == 404 and gone.json()["error"] == "session_not_found"


async def test_concurrent_claims_never_share_a_pod(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(
        POOL_SIZE="8",
        MAX_SESSIONS="60",
        REFILL_PER_SECOND="20",
        MAX_COLD_STARTS="50",
        CLAIM_TIMEOUT="120",  # every claim waits for its pod here: uniqueness is the point
    )
    server.wait_pool(8)
    async with server.aclient() as client:
        responses = await asyncio.gather(*(client.post("/session") for _ in range(50)))
        assert [r.status_code for r in responses] == [201] * 50
        bodies = [r.json() for r in responses]
        pods = [b["pod"]["name"] for b in bodies]
        assert len(set(pods)) == 50
        assert len({b["session_id"] for b in bodies}) == 50
        assert sum(b["warm"] for b in bodies) >= 8  # the pool was used; the rest went cold
        pool = (await client.get("/pool")).json()
        assert pool["assigned"] == 50


def test_unknown_and_malformed_sessions_are_404(provisioner: Server) -> None:
    with provisioner.client() as client:
        for path in ("/session/" + "A" * 43, "/session/nope", "/session/%00"):
            for method, suffix in (("GET", ""), ("DELETE", ""), ("DELETE", "/pod")):
                response = client.request(method, path + suffix)
                assert response.status_code == 404, (method, path)
                assert set(response.json()) == {"error", "detail"}


def test_bad_requests_are_json_4xx(provisioner: Server) -> None:
    with provisioner.client() as client:
        wrong_method = client.put("/session")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"] == "method_not_allowed"
        missing = client.get("/no/such/path")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        # A body is not needed; junk in it is ignored rather than crashing.
        junk = client.post("/session", content=b"\xff\xfe{", headers={"content-type": "x/y"})
        assert junk.status_code == 201
        client.delete(f"/session/{junk.json()['session_id']}")


def test_rate_limit_gives_429_with_retry_after(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(RATE_LIMIT_PER_MINUTE="6", RATE_LIMIT_BURST="2")
    with server.client() as client:
        assert client.post("/session").status_code == 201
        assert client.post("/session").status_code == 201
        limited = client.post("/session")
        assert limited.status_code == 429
        assert limited.json()["error"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 10
        # Another client address (via the trusted proxy header) has its own budget.
        other = client.post("/session", headers={"X-Forwarded-For": "203.0.113.9"})
        assert other.status_code == 201


def test_capacity_gives_429_with_retry_after(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(MAX_SESSIONS="2", POOL_SIZE="2")
    with server.client() as client:
        first = client.post("/session").json()["session_id"]
        client.post("/session")
        full = client.post("/session")
        assert full.status_code == 429
        assert full.json()["error"] == "at_capacity"
        assert int(full.headers["Retry-After"]) >= 1
        assert client.get("/pool").json()["capacity"] == 2
        # Ending a session frees its slot.
        client.delete(f"/session/{first}")
        assert client.post("/session").status_code == 201


async def test_empty_pool_sheds_load_past_the_cold_start_bound(
    start_provisioner: StartProvisioner,
) -> None:
    server = start_provisioner(POOL_SIZE="0", MAX_COLD_STARTS="1")
    async with server.aclient() as client:
        replies = await asyncio.gather(*(client.post("/session") for _ in range(3)))
    codes = sorted(r.status_code for r in replies)
    assert codes == [201, 429, 429]
    shed = next(r for r in replies if r.status_code == 429)
    assert shed.json()["error"] == "pool_empty"
    assert shed.headers["Retry-After"] == "1"
    cold = next(r for r in replies if r.status_code == 201).json()
    assert cold["warm"] is False


def test_pool_health_ready(provisioner: Server) -> None:
    with provisioner.client() as client:
        pool = client.get("/pool").json()
        assert set(pool) == {"warm", "starting", "assigned", "target", "capacity"}
        assert 4 <= pool["target"] <= pool["capacity"]  # POOL_SIZE, more after claims
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").status_code == 200


def metric_samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(server.metrics_url, timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_follow_claims_kills_and_rejections(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(MAX_SESSIONS="1", POOL_SIZE="2")
    server.wait_pool(2)
    with server.client() as client:
        samples = metric_samples(server)

        def grew(name: str, by: float = 1, **labels: str) -> bool:
            """Whether `name{labels}` grew by `by` since the last look (which it updates)."""
            key = (name, frozenset(labels.items()))
            before = samples.get(key, 0.0)
            samples.update(metric_samples(server))
            return samples.get(key, 0.0) == before + by

        claimed = client.post("/session").json()
        sid, first_pod = claimed["session_id"], claimed["pod"]["name"]
        assert grew("pingpod_claims_total", path="warm")
        assert samples[("pingpod_claim_seconds_count", frozenset({("path", "warm")}))] == 1
        assert samples[("pingpod_sessions_active", frozenset())] == 1

        replaced = ("pingpod_replacement_seconds_count", frozenset())
        replacements = samples.get(replaced, 0.0)
        assert client.delete(f"/session/{sid}/pod").status_code == 202
        assert grew("pingpod_pod_kills_total")

        # The replacement's time is observed once it is Ready (the pod is null until it
        # exists, and the killed one may still show for a moment); it may be Ready
        # already, so compare with the count before the kill.
        def replaced_and_ready() -> bool:
            pod = client.get(f"/session/{sid}").json()["pod"] or {}
            return bool(pod.get("ready")) and pod.get("name") != first_pod

        wait_until(replaced_and_ready)
        samples.update(metric_samples(server))
        assert samples.get(replaced, 0.0) == replacements + 1

        full = client.post("/session")
        assert full.status_code == 429
        assert grew("pingpod_rejections_total", reason="at_capacity")

        client.delete(f"/session/{sid}")
        assert grew("pingpod_sessions_ended_total", reason="deleted")
        assert samples[("pingpod_sessions_active", frozenset())] == 0


def wait_until(probe: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            pytest.fail("the replacement pod never became Ready")
        time.sleep(0.05)


def test_frontend_is_served_when_built(start_provisioner: StartProvisioner, tmp_path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>pingpod</title>")
    server = start_provisioner(FRONTEND_DIR=str(dist))
    response = httpx.get(server.url + "/")
    assert response.status_code == 200 and "<title>pingpod</title>" in response.text
    assert httpx.get(server.url + "/pool").status_code == 200  # API routes win over files
