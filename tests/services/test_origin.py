"""The Origin rule on every state change, against a real provisioner: a page of
a foreign origin can neither claim, kill nor end a session; clients without
Origin (curl, servers) and the page's own origin can; the allow-list is the
gateway's."""

from __future__ import annotations

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.support.servers import Server, StartProvisioner, new_session
from tests.support.wsclient import next_json

FOREIGN = ("https://evil.example", "null", "http://127.0.0.1:1", "")


def metric(server: Server, name: str, **labels: str) -> float:
    """The sum of the samples of `name` with these labels."""
    text = httpx.get(server.metrics_url).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "origin_not_allowed"
    assert isinstance(body["detail"], str) and body["detail"]
    assert set(body) == {"error", "detail"}


def test_foreign_origin_cannot_claim_and_nothing_is_created(provisioner: Server) -> None:
    before_pool = httpx.get(provisioner.url + "/pool").json()
    before_claims = metric(provisioner, "pingpod_claims_total")
    before_refused = metric(provisioner, "pingpod_rejections_total", reason="origin")
    for origin in FOREIGN:
        assert_refused(httpx.post(provisioner.url + "/session", headers={"Origin": origin}))
    assert httpx.get(provisioner.url + "/pool").json()["assigned"] == before_pool["assigned"]
    assert metric(provisioner, "pingpod_claims_total") == before_claims
    refused = metric(provisioner, "pingpod_rejections_total", reason="origin")
    assert refused == before_refused + len(FOREIGN)


def test_foreign_origin_cannot_kill_or_end_a_session(provisioner: Server) -> None:
    session = new_session(provisioner)
    sid, pod = session["session_id"], session["pod"]["name"]
    with provisioner.client() as client:
        for origin in FOREIGN:
            hostile = {"Origin": origin}
            assert_refused(client.delete(f"/session/{sid}/pod", headers=hostile))
            assert_refused(client.delete(f"/session/{sid}", headers=hostile))
        status = client.get(f"/session/{sid}")
        assert status.status_code == 200
        assert status.json()["pod"]["name"] == pod and status.json()["replacements"] == 0
        # The session id is no key past the Origin check: the refusal does not
        # depend on the id being known.
        assert_refused(client.delete("/session/" + "A" * 43, headers={"Origin": FOREIGN[0]}))
        assert client.delete(f"/session/{sid}").status_code == 204


def test_own_origin_and_no_origin_are_served(provisioner: Server) -> None:
    own = {"Origin": provisioner.url}  # the page's own origin: http://127.0.0.1:<port>
    with provisioner.client() as client:
        for headers in (own, {}):
            created = client.post("/session", headers=headers)
            assert created.status_code == 201, created.text
            sid = created.json()["session_id"]
            assert client.delete(f"/session/{sid}/pod", headers=headers).status_code == 202
            assert client.delete(f"/session/{sid}", headers=headers).status_code == 204
            assert client.get(f"/session/{sid}").status_code == 404


def test_reads_are_not_origin_checked(provisioner: Server) -> None:
    hostile = {"Origin": "https://evil.example"}
    with provisioner.client() as client:
        assert client.get("/pool", headers=hostile).status_code == 200
        assert client.get("/health", headers=hostile).status_code == 200


def test_unknown_method_or_path_is_405_or_404_whatever_the_origin(provisioner: Server) -> None:
    hostile = {"Origin": "https://evil.example"}
    with provisioner.client() as client:
        put = client.put("/session", headers=hostile)
        assert put.status_code == 405 and put.headers["allow"] == "POST"
        # Allow names every method of the path, not only the first route's.
        patch = client.patch("/session/" + "A" * 43, headers=hostile)
        assert patch.status_code == 405 and patch.headers["allow"] == "DELETE, GET, HEAD"
        missing = client.post("/no/such/path", headers=hostile)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_the_allow_list_is_the_gateways(start_provisioner: StartProvisioner) -> None:
    listed = "https://demo.example"
    server = start_provisioner(POOL_SIZE="2", ALLOWED_ORIGINS=listed)
    server.wait_pool(1)
    own = server.url  # allowed by default, but not once a list is set
    with server.client() as client:
        assert_refused(client.post("/session", headers={"Origin": own}))
        created = client.post("/session", headers={"Origin": listed})
        assert created.status_code == 201, created.text
        session = created.json()
    url = server.ws + session["ws_url"]
    with pytest.raises(websockets.InvalidStatus) as info:
        async with connect(url, origin=own):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 403
    async with connect(url, origin=listed) as ws:  # type: ignore[arg-type]
        assert (await next_json(ws))["event"] == "upstream_ready"
    with server.client() as client:
        sid = session["session_id"]
        assert_refused(client.delete(f"/session/{sid}", headers={"Origin": own}))
        assert client.delete(f"/session/{sid}", headers={"Origin": listed}).status_code == 204
