"""The echo pod template sets only variables the echo server reads, with values it takes."""

from __future__ import annotations

from infra.workload import ECHO_PORT, echo_pod_template
from services.common.env import env_defaults
from services.echo.settings import EchoSettings


def test_every_name_the_echo_template_sets_is_read() -> None:
    (container,) = echo_pod_template("echo@sha256:" + "a" * 64, arm64_only=True)["spec"][
        "containers"
    ]
    names = [var["name"] for var in container["env"]]
    assert names and len(names) == len(set(names))
    assert sorted(set(names) - set(env_defaults(EchoSettings))) == []
    plain = {var["name"]: var["value"] for var in container["env"] if "value" in var}
    assert EchoSettings.from_env(plain).port == ECHO_PORT


def test_a_name_the_echo_server_does_not_read_is_caught() -> None:
    assert sorted({"PORT", "MAX_FRAME_SIZE"} - set(env_defaults(EchoSettings))) == [
        "MAX_FRAME_SIZE"
    ]
