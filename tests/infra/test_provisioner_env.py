"""The provisioner's environment, as infra/ sets it, is what its Settings reads.

A name the provisioner does not read is ignored without a word (the setting keeps
its default), so every name the Deployment sets must be one that
``Settings.from_env`` looks up. Those names come from the parser itself: it runs
on an empty environment that records every lookup.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from infra.provisioner import (
    GATEWAY_DRAIN_DELAY,
    READY_FAILURES,
    READY_PERIOD_SECONDS,
    provisioner_env,
)
from infra.settings import AppSettings
from infra.workload import PROVISIONER_NAME, PROVISIONER_PORT, TEMPLATE_DIR, TEMPLATE_FILE
from services.provisioner.settings import Settings
from tests.infra.harness import run_stack
from tests.infra.render import app_objects

# Misspellings the check must catch (environment names are case-sensitive).
MISSPELT = ["POOL_SIZ", "MAX_SESION", "pool_size", "ECHO_TEMPLATE", "SESSION_IDLE_TIMEOUT_S"]


class RecordingEnv(Mapping[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        self.looked_up: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.looked_up.append(key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def settings_names() -> frozenset[str]:
    """Every environment variable ``Settings.from_env`` reads."""
    env = RecordingEnv()
    Settings.from_env(env)
    return frozenset(env.looked_up)


def unread(names: Iterable[str]) -> list[str]:
    """The names the provisioner would ignore."""
    return sorted(set(names) - settings_names())


def provisioner_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = (
        o
        for o in objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == PROVISIONER_NAME
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def env_names(objects: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in provisioner_container(objects)["env"]]


def example_settings() -> AppSettings:
    return AppSettings(
        namespace="pingpod",
        pool_size=4,
        max_sessions=50,
        session_idle_timeout=60,
        session_max_lifetime=600,
        provisioner_replicas=2,
        allowed_origins=("https://pingpod.example.com",),
        echo_arm64_only=True,
    )


def test_the_recorded_names_are_the_settings_environment() -> None:
    # The recording works: the parser looked up what the provisioner is known to read.
    assert {
        "BACKEND",
        "NAMESPACE",
        "POD_NAME",
        "POOL_SIZE",
        "ECHO_POD_TEMPLATE",
    } <= settings_names()


def test_every_name_the_deployment_sets_is_read(objects: list[dict[str, Any]]) -> None:
    names = env_names(objects)
    assert len(names) == len(set(names)), names
    assert unread(names) == []


def test_every_name_provisioner_env_sets_is_read() -> None:
    names = [str(var.name) for var in provisioner_env(example_settings())]
    assert names
    assert unread(names) == []


@pytest.mark.parametrize("misspelt", MISSPELT)
def test_a_misspelt_name_is_caught(objects: list[dict[str, Any]], misspelt: str) -> None:
    assert unread([*env_names(objects), misspelt]) == [misspelt]


def test_the_provisioner_accepts_the_values(objects: list[dict[str, Any]]) -> None:
    env = provisioner_container(objects)["env"]
    plain = {e["name"]: e["value"] for e in env if "value" in e}
    settings = Settings.from_env(plain)
    assert settings.backend == "kubernetes"
    assert settings.port == PROVISIONER_PORT
    assert settings.echo_pod_template == Path(TEMPLATE_DIR) / TEMPLATE_FILE
    assert settings.allowed_origins
    from_fields = {e["name"] for e in env if "valueFrom" in e}
    assert from_fields == {"NAMESPACE", "POD_NAME"}


@pytest.mark.parametrize("replicas", [1, 2])
def test_allow_gateway_kill_reaches_the_provisioner(replicas: int) -> None:
    settings = dataclasses.replace(
        example_settings(), allow_gateway_kill=True, provisioner_replicas=replicas
    )
    env = {str(var.name): str(var.value) for var in provisioner_env(settings) if var.value}
    assert env["ALLOW_GATEWAY_KILL"] == "true"
    # The provisioner counts its live peers itself: no fixed count to go stale.
    assert "PROVISIONER_REPLICAS" not in env
    parsed = Settings.from_env({**env, "BACKEND": "kubernetes"})
    assert parsed.gateway_kill_allowed
    # The drain outlasts the readiness probe's verdict, so the ALB stops routing first.
    assert parsed.drain_delay == GATEWAY_DRAIN_DELAY > READY_PERIOD_SECONDS * READY_FAILURES


def test_gateway_kill_is_off_by_default(objects: list[dict[str, Any]]) -> None:
    env = provisioner_container(objects)["env"]
    plain = {e["name"]: e["value"] for e in env if "value" in e}
    assert plain["ALLOW_GATEWAY_KILL"] == "false"
    assert Settings.from_env(plain).gateway_kill_allowed is False
    probe = provisioner_container(objects)["readinessProbe"]
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (
        READY_PERIOD_SECONDS,
        READY_FAILURES,
    )


def test_allow_gateway_kill_from_the_stack_config() -> None:
    run = run_stack("prod", {"allowGatewayKill": True})
    env = provisioner_container(app_objects(run))["env"]
    plain = {e["name"]: e["value"] for e in env if "value" in e}
    assert plain["ALLOW_GATEWAY_KILL"] == "true"
    assert Settings.from_env(plain).gateway_kill_allowed is True
