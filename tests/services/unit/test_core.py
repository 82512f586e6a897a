"""The pure core: rate limits, pool arithmetic, session rules, settings (the showcase's
and the pool feed's too), origin checks."""

from __future__ import annotations

import re

import pytest

from services.common.ratelimit import ConnectionCounter, KeyedLimiter, TokenBucket
from services.provisioner.access import origin_allowed
from services.provisioner.errors import ConfigError, SessionNotFound
from services.provisioner.pool import max_pods, pods_to_start
from services.provisioner.sessions import (
    EndReason,
    end_reason,
    new_session_id,
    session_key,
)
from services.provisioner.settings import Settings


def test_token_bucket_allows_burst_then_paces() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take(100.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(100.0) == pytest.approx(0.5)
    assert bucket.take(100.5) == 0


def test_keyed_limiter_is_per_key_and_bounded() -> None:
    limiter = KeyedLimiter(rate=1, burst=1, max_keys=2)
    assert limiter.take("a", 0) == 0
    assert limiter.take("a", 0) > 0
    assert limiter.take("b", 0) == 0
    limiter.take("c", 0)  # evicts "a", the least recently used
    assert limiter.take("a", 0) == 0


def test_connection_counter() -> None:
    counter = ConnectionCounter(2)
    assert counter.acquire("ip") and counter.acquire("ip")
    assert not counter.acquire("ip")
    counter.release("ip")
    assert counter.acquire("ip")
    assert counter.acquire("other")  # every key has its own cap


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"warm": 0, "starting": 0, "assigned": 0, "budget": 10}, 4),
        ({"warm": 2, "starting": 1, "assigned": 0, "budget": 10}, 1),
        ({"warm": 0, "starting": 0, "assigned": 0, "budget": 2}, 2),  # refill rate cap
        ({"warm": 0, "starting": 0, "assigned": 52, "budget": 10}, 2),  # cost cap
        ({"warm": 5, "starting": 0, "assigned": 0, "budget": 10}, 0),
    ],
)
def test_pods_to_start(counts: dict[str, int], expected: int) -> None:
    assert pods_to_start(target=4, max_pods=max_pods(max_sessions=50, pool_size=4), **counts) == (
        expected
    )


def test_session_ids_are_unguessable_and_keys_are_label_safe() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    sid = ids.pop()
    assert len(sid) == 43  # 256 bits
    key = session_key(sid)
    assert re.fullmatch("[0-9a-f]{40}", key)  # a label value holds at most 63 characters
    assert sid not in key


@pytest.mark.parametrize("bad", ["", "short", "x" * 43 + "y", "../" + "a" * 40, "é" * 43])
def test_malformed_session_ids_are_unknown(bad: str) -> None:
    with pytest.raises(SessionNotFound):
        session_key(bad)


def test_end_reason() -> None:
    kw = {"expires_at": 100.0, "idle_timeout": 10.0}
    assert end_reason(now=50, last_active=45, **kw) is None
    assert end_reason(now=50, last_active=40, **kw) == EndReason.IDLE
    assert end_reason(now=100, last_active=99, **kw) == EndReason.EXPIRED


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {"POOL_SIZE": "7", "ALLOWED_ORIGINS": "https://a.example, https://b.example/"}
    )
    assert settings.pool_size == 7
    assert settings.allowed_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"POOL_SIZE": "many"}, "POOL_SIZE"),
        ({"POOL_SIZE": "-1"}, "POOL_SIZE"),
        ({"PORT": "70000"}, "PORT"),
        ({"BACKEND": "nomad"}, "BACKEND"),
        ({"SESSION_IDLE_TIMEOUT": "0"}, "SESSION_IDLE_TIMEOUT"),
        ({"ALLOWED_ORIGINS": "example.com"}, "ALLOWED_ORIGINS"),
    ],
)
def test_settings_errors_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.key == key
    assert key in str(info.value)


def test_origin_allowed() -> None:
    assert origin_allowed(None, "h:1", ())
    assert origin_allowed("http://h:1", "h:1", ())
    assert not origin_allowed("http://evil:1", "h:1", ())
    assert origin_allowed("https://demo.example", "x", ("https://demo.example",))
    assert not origin_allowed("https://demo.example.evil", "x", ("https://demo.example",))


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


def test_bad_feed_settings_name_the_key() -> None:
    for key in ("FEED_PER_IP", "FEED_MAX_STREAMS", "FEED_MAX_TILES"):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({key: "0"})
        assert info.value.key == key
