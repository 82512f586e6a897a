"""Settings from the environment (services/common/env.py), for both services.

Every echo setting is a variable, and a bad value stops either server with a
message naming the variable.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect

from services.common.env import EnvError, env_defaults, env_name, parse, read_env
from services.echo.settings import EchoSettings
from services.provisioner.errors import ConfigError
from services.provisioner.settings import Settings
from tests.support.servers import Server, start_server
from tests.support.wsclient import next_json, ping

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        ("7", int, 7),
        ("1.5", float, 1.5),
        ("On", bool, True),
        ("no", bool, False),
        ("a, b,,c ", tuple[str, ...], ("a", "b", "c")),
        ("/etc/x.json", Path, Path("/etc/x.json")),
        ("12", int | None, 12),
        ("text", str, "text"),
    ],
)
def test_parse_types(raw: str, kind: object, value: object) -> None:
    assert parse("KEY", raw, kind) == value


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("many", int, "an integer"),
        ("1.5", int, "an integer"),
        ("fast", float, "a number"),
        ("inf", float, "a finite number"),
        ("nan", float, "a finite number"),
        ("maybe", bool, "true or false"),
        ("x", int | None, "an integer"),
    ],
)
def test_parse_errors_name_the_variable(raw: str, kind: object, expected: str) -> None:
    with pytest.raises(EnvError) as info:
        parse("SOME_KEY", raw, kind)
    assert (info.value.key, info.value.expected, info.value.got) == ("SOME_KEY", expected, raw)
    assert str(info.value) == f"SOME_KEY: expected {expected}, got {raw!r}"


def test_unset_and_empty_variables_keep_their_defaults() -> None:
    assert read_env(EchoSettings, {"PORT": "", "UNRELATED": "x"}) == {}
    assert read_env(EchoSettings, {"PORT": "9"}) == {"port": 9}


# A value unlike the default for each echo setting, by variable.
ECHO_VALUES = {
    "HOST": ("127.0.0.2", "127.0.0.2"),
    "PORT": ("9090", 9090),
    "LISTEN_FD": ("3", 3),
    "POD_NAME": ("pod-a", "pod-a"),
    "NODE_NAME": ("node-a", "node-a"),
    "MAX_FRAME_BYTES": ("100", 100),
    "MAX_MESSAGES_PER_SECOND": ("7.5", 7.5),
    "GRACE_SECONDS": ("0.5", 0.5),
    "LOG_LEVEL": ("DEBUG", "DEBUG"),
    "ECHO_PARENT_PID": ("4242", 4242),
}


def test_every_echo_setting_is_a_variable() -> None:
    assert set(ECHO_VALUES) == set(env_defaults(EchoSettings))
    settings = EchoSettings.from_env({k: raw for k, (raw, _) in ECHO_VALUES.items()})
    for field in dataclasses.fields(EchoSettings):
        assert getattr(settings, field.name) == ECHO_VALUES[env_name(field.name)][1], field.name


def test_echo_names_default_to_the_hostname() -> None:
    settings = EchoSettings.from_env({})
    assert settings.pod_name and settings.pod_name == settings.node_name


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"MAX_FRAME_BYTES": "0"}, "MAX_FRAME_BYTES"),
        ({"MAX_FRAME_BYTES": "4k"}, "MAX_FRAME_BYTES"),
        ({"MAX_MESSAGES_PER_SECOND": "0.5"}, "MAX_MESSAGES_PER_SECOND"),
        ({"MAX_MESSAGES_PER_SECOND": "inf"}, "MAX_MESSAGES_PER_SECOND"),
        ({"GRACE_SECONDS": "-1"}, "GRACE_SECONDS"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"LISTEN_FD": "-1"}, "LISTEN_FD"),
        ({"ECHO_PARENT_PID": "init"}, "ECHO_PARENT_PID"),
    ],
)
def test_echo_errors_name_the_variable(env: dict[str, str], key: str) -> None:
    with pytest.raises(EnvError) as info:
        EchoSettings.from_env(env)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: expected ")


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"MAX_SESSIONS": "1e3"}, "MAX_SESSIONS"),
        ({"SESSION_MAX_LIFETIME": "inf"}, "SESSION_MAX_LIFETIME"),
        ({"WS_MAX_MESSAGES_PER_SECOND": "0.5"}, "WS_MAX_MESSAGES_PER_SECOND"),
        ({"ALLOW_GATEWAY_KILL": "sometimes"}, "ALLOW_GATEWAY_KILL"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
        ({"POOL_MEMBERS": "jobs"}, "POOL_MEMBERS"),
        ({"POOL_MEMBERS": "pods", "SESSION_END": "recycle"}, "SESSION_END"),
    ],
)
def test_provisioner_errors_name_the_variable(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.key == key
    assert info.value.detail.startswith(f"{key}: expected ")


def test_provisioner_origins_lose_a_trailing_slash() -> None:
    settings = Settings.from_env({"ALLOWED_ORIGINS": "https://a.example/, https://b.example"})
    assert settings.allowed_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("module", "env", "message"),
    [
        (
            "services.echo",
            {"MAX_MESSAGES_PER_SECOND": "lots"},
            "echo: configuration error: MAX_MESSAGES_PER_SECOND: expected a number, got 'lots'",
        ),
        (
            "services.provisioner",
            {"MAX_SESSIONS": "-3"},
            "provisioner: configuration error: MAX_SESSIONS: expected an integer >= 1, got '-3'",
        ),
    ],
)
def test_a_bad_value_stops_the_server_with_the_variable_named(
    module: str, env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOST": "127.0.0.1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == message


@pytest.fixture
def small_echo(tmp_path: Path) -> Iterator[Server]:
    server = start_server(
        "services.echo",
        tmp_path,
        {"POD_NAME": "echo-small", "MAX_FRAME_BYTES": "200", "MAX_MESSAGES_PER_SECOND": "2"},
    )
    yield server
    server.stop()


async def test_echo_takes_its_limits_from_the_environment(small_echo: Server) -> None:
    # A frame of 300 bytes is within the default 4096, past MAX_FRAME_BYTES=200.
    async with connect(small_echo.ws + "/ws", max_size=None) as ws:
        await ws.send("x" * 300)
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    # A burst of 2 messages, then the third is one too many (the default allows 100).
    async with connect(small_echo.ws + "/ws") as ws:
        for seq in range(2):
            await ping(ws, seq)
            assert (await next_json(ws))["pod"] == "echo-small"
        with pytest.raises(websockets.ConnectionClosed) as info:
            for seq in range(2, 50):
                await ping(ws, seq)
            while True:
                await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
