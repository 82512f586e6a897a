"""The showcase's HTTP side on the local backend: GET /config, "kill my gateway"
refused where it is not offered, pod start phases in GET /session/{id}, and
the gateway naming its replica. The drain itself needs two replicas on
Kubernetes: tests/k8s/test_gateway_kill.py."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect

from services.provisioner.errors import ConfigError
from services.provisioner.settings import Settings
from tests.services.helpers import Server, StartProvisioner, is_event, new_session
from tests.services.wsutil import until

PHASES = ("created", "scheduled", "started", "ready")


def test_config_says_the_gateway_kill_is_off(provisioner: Server) -> None:
    with provisioner.client() as client:
        response = client.get("/config")
        assert response.status_code == 200
        assert response.json() == {"gateway_kill": False}


def test_kill_gateway_is_refused_where_it_is_not_offered(provisioner: Server) -> None:
    session = new_session(provisioner)
    with provisioner.client() as client:
        for sid in (session["session_id"], "no-such-session"):
            response = client.delete(f"/session/{sid}/gateway")
            assert response.status_code == 403
            assert response.json() == {
                "error": "gateway_kill_off",
                "detail": "killing a gateway is off here (ALLOW_GATEWAY_KILL)",
            }
        # Nothing changed: the session and its pod are as they were.
        status = client.get(f"/session/{session['session_id']}").json()
        assert status["pod"]["name"] == session["pod"]["name"]
        assert client.get("/ready").status_code == 200
        client.delete(f"/session/{session['session_id']}")


def test_allowing_it_is_not_enough_without_kubernetes(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(ALLOW_GATEWAY_KILL="true")
    session = new_session(server)
    with server.client() as client:
        assert client.get("/config").json() == {"gateway_kill": False}
        response = client.delete(f"/session/{session['session_id']}/gateway")
        assert response.status_code == 403
        assert response.json()["error"] == "gateway_kill_off"
        assert "Kubernetes" in response.json()["detail"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ALLOW_GATEWAY_KILL", "maybe"),
        ("DRAIN_DELAY", "-1"),
        ("GATEWAY_KILL_INTERVAL", "0"),
    ],
)
def test_bad_settings_name_the_key(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({key: value})
    assert info.value.key == key


def test_gateway_kill_is_allowed_only_on_kubernetes() -> None:
    # Offered too needs two live replicas: tests/k8s/test_gateway_kill.py counts them.
    def allowed(**env: str) -> bool:
        return Settings.from_env(env).gateway_kill_allowed

    on = {"ALLOW_GATEWAY_KILL": "true", "BACKEND": "kubernetes"}
    assert allowed(**on)
    assert not allowed(**{**on, "ALLOW_GATEWAY_KILL": "false"})
    assert not allowed(**{**on, "BACKEND": "local"})


async def test_session_shows_its_pods_start_phases(provisioner: Server) -> None:
    session = new_session(provisioner)
    sid = session["session_id"]
    with provisioner.client() as client:
        pod = client.get(f"/session/{sid}").json()["pod"]
        phases = pod["phases"]
        times = [phases[p] for p in PHASES]
        assert times == sorted(times), phases
        assert phases["resolution"] == 0.001
        assert phases["started"] == pod["started_at"]

        claimed_at = client.get(f"/session/{sid}").json()["created_at"]
        async with connect(provisioner.ws + session["ws_url"]) as ws:
            await until(ws, is_event("upstream_ready"))
            assert client.delete(f"/session/{sid}/pod").status_code == 202
            ready = await until(
                ws, lambda f: is_event("upstream_ready")(f) and f["pod"] != pod["name"]
            )
        replacement = client.get(f"/session/{sid}").json()["pod"]
        assert replacement["name"] == ready["pod"]
        phases = replacement["phases"]
        times = [phases[p] for p in PHASES]
        assert times == sorted(times), phases
        assert phases["created"] >= claimed_at
        # The gateway connected once the pod was Ready, by the same clock.
        assert ready["at"] / 1000 >= phases["ready"]
        client.delete(f"/session/{sid}")


async def test_gateway_events_name_the_replica(start_provisioner: StartProvisioner) -> None:
    server = start_provisioner(POD_NAME="provisioner-abc")
    session = new_session(server)
    async with connect(server.ws + session["ws_url"]) as ws:
        ready = await until(ws, is_event("upstream_ready"))
        assert ready["gateway"] == "provisioner-abc"
    httpx.delete(server.url + f"/session/{session['session_id']}")
