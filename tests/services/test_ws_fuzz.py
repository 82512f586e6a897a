"""WebSocket fuzzing of the echo server (`/ws`) and the gateway
(`/session/{id}/ws`), each a real uvicorn process, over real sockets.

Cases come from hypothesis (tests/support/wsfuzz.py) with one seed per run,
printed at the start; `PINGPOD_FUZZ_SEED=<seed>` replays a run and
`PINGPOD_FUZZ_SCALE=<n>` runs n times as many cases. Every case ends as the
contract says: a pong (each message answered exactly once, in order, with
strict JSON), the close code of services/common/wire.py `CloseCode`, or, when
the client itself vanishes, the server letting the connection go. After each
test the server under test must be back where it started, measured from
outside: its open descriptors by kind (/proc/<pid>/fd), its asyncio tasks
(`GET /_diag/tasks` of tests/support/diag_server.py, a test-only launcher)
and, for the gateway, `pingpod_websockets_open`; and its log must hold no
error and no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scripts.procinfo import tcp_send_queue
from services.common.wire import CloseCode
from tests.support.fuzzing import FUZZ_SEED, SCALE, fuzz, run
from tests.support.leftovers import leaves_nothing_behind
from tests.support.rawws import PING, TEXT, RawClient, encode_frame, reset_tcp
from tests.support.servers import new_session
from tests.support.wsfuzz import (
    MAX_FRAME,
    Drop,
    Message,
    Violation,
    drops,
    expected_reply,
    flood,
    messages,
    ping_text,
    violations,
)
from tests.support.wstarget import Target, close_normally, replies_until_pong, start_diag_server

GATEWAY_RATE = 50  # WS_MAX_MESSAGES_PER_SECOND of the gateway under test (its default)
ECHO_RATE = 100  # the echo server's fixed allowance
CLOSE_WITHIN = 5.0  # seconds from a refused frame to the close frame


# -- the servers under test ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    env = {"DIAG_SERVICE": "services.echo", "POD_NAME": "fuzz-echo", "NODE_NAME": "fuzz-node"}
    server = start_diag_server(tmp_path_factory.mktemp("echo"), env, "/health")
    yield Target("echo", server, [server.ws + "/ws"], ECHO_RATE, greets=False)
    server.stop()


@pytest.fixture(scope="module")
def gateway_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    env = {
        "DIAG_SERVICE": "services.provisioner",
        "POOL_SIZE": "2",
        # A fixed pool target: the adaptive one grows with the claims made here when pods
        # start slowly (a loaded machine) and shrinks later, mid-count.
        "POOL_HEADROOM": "0",
        "WS_PER_IP": "64",
        "WS_MAX_MESSAGES_PER_SECOND": str(GATEWAY_RATE),
        "MAX_FRAME_BYTES": str(MAX_FRAME),
        "SESSION_IDLE_TIMEOUT": "600",
        "RATE_LIMIT_PER_MINUTE": "6000",
        "RATE_LIMIT_BURST": "100",
        "CLAIM_TIMEOUT": "30",
    }
    server = start_diag_server(tmp_path_factory.mktemp("gateway"), env, "/ready", metrics=True)
    urls = [server.ws + new_session(server)["ws_url"] for _ in range(2)]
    server.wait_pool(2)  # the pool back to full: nothing starting while we count
    yield Target("gateway", server, urls, GATEWAY_RATE, greets=True)
    server.stop()


@pytest.fixture(params=["echo", "gateway"])
def target(request: pytest.FixtureRequest) -> Target:
    return request.getfixturevalue(f"{request.param}_target")


@pytest.fixture(scope="module", autouse=True)
def announce_seed(request: pytest.FixtureRequest) -> None:
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # on the terminal even while output is captured
        reporter.write_line(
            f"ws fuzz: seed {FUZZ_SEED} (replay: PINGPOD_FUZZ_SEED={FUZZ_SEED}), scale {SCALE:g}"
        )


# -- playing cases --------------------------------------------------------------------------------


def closing_seq(sent: list[Message]) -> int:
    """A seq for the closing ping that none of the fuzzed pings has."""
    taken: set[int] = set()
    for message in sent:
        with contextlib.suppress(ValueError, RecursionError, AttributeError):
            seq = json.loads(message.data).get("seq")
            if isinstance(seq, int):
                taken.add(seq)
    seq = 10**20
    while seq in taken:
        seq += 1
    return seq


async def play_messages(target: Target, sent: list[Message]) -> None:
    client = await target.open()
    try:
        for message in sent:
            client.write(b"".join(message.frames()))
        final = closing_seq(sent)
        client.write(encode_frame(TEXT, ping_text(final)))
        replies = await replies_until_pong(client, final)
        kinds = [reply.get("type") for reply in replies.texts]
        assert kinds == [expected_reply(m.data) for m in sent] + ["pong"], replies.texts
        for message, reply in zip(sent, replies.texts, strict=False):
            if reply["type"] == "pong":  # it echoes the ping's seq and t
                ping = json.loads(message.data)
                assert (reply["seq"], reply["t"]) == (ping["seq"], ping["t"])
            else:
                assert isinstance(reply.get("error"), str), reply
        assert replies.control_pongs == [p for m in sent for p in m.pings]
        await close_normally(client)
    finally:
        client.writer.transport.abort()


async def play_violation(target: Target, case: Violation) -> None:
    client = await target.open()
    try:
        for message in case.before:
            client.write(b"".join(message.frames()))
        client.write(b"".join(case.frames))
        # Promptly: well before websockets' 10 s close timeout, which a close stuck
        # behind unread frames would wait out.
        outcome = await client.outcome(CLOSE_WITHIN)
        assert outcome.close_code == case.code, f"{case.kind}: {outcome}"
    finally:
        client.writer.transport.abort()


async def play_drop(target: Target, case: Drop) -> None:
    client = await target.open()
    for message in case.before:
        client.write(b"".join(message.frames()))
    client.write(case.partial)
    with contextlib.suppress(ConnectionError):
        await client.writer.drain()
    if case.how == "reset":
        client.reset()
    elif case.how == "fin":
        client.drop()
    else:  # half-closed: the server sees EOF and must let the connection go
        client.writer.write_eof()
        outcome = await client.outcome(15)
        assert outcome.eof
        client.writer.transport.abort()


# -- the tests ------------------------------------------------------------------------------------


def test_every_message_is_answered_once(target: Target) -> None:
    @fuzz(60)
    @given(sent=st.lists(messages(), min_size=1, max_size=6))
    def case(sent: list[Message]) -> None:
        run(play_messages(target, sent))

    with leaves_nothing_behind(target):
        case()


def test_violations_close_with_their_code(target: Target) -> None:
    @fuzz(80)
    @given(violation=violations())
    def case(violation: Violation) -> None:
        run(play_violation(target, violation))

    with leaves_nothing_behind(target):
        for times in range(2, 7):  # a flood's close is a race with the pongs on their way
            run(play_violation(target, flood(times * target.rate)))
        case()


def test_abrupt_endings_leave_nothing_behind(target: Target) -> None:
    @fuzz(40)
    @given(drop=drops())
    def case(drop: Drop) -> None:
        run(play_drop(target, drop))

    with leaves_nothing_behind(target):
        case()


def test_partial_handshakes_are_let_go(target: Target) -> None:
    path = target.url().split("/", 3)[3]
    request = (
        f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()

    async def play(cut: int, reset: bool) -> None:
        _, writer = await RawClient.connect_tcp(target.url())
        writer.write(request[:cut])
        await writer.drain()
        if reset:
            reset_tcp(writer)
        else:
            writer.close()

    @fuzz(20)
    @given(cut=st.integers(0, len(request) - 1), reset=st.booleans())
    def case(cut: int, reset: bool) -> None:
        run(play(cut, reset))

    with leaves_nothing_behind(target):
        case()


def test_unknown_sessions_close_4404(gateway_target: Target) -> None:
    ids = st.text(
        st.characters(codec="utf-8", exclude_characters="/?#%", exclude_categories=["Cs"]),
        min_size=1,
        max_size=120,
    ) | st.text(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=43, max_size=43
    )

    async def play(session_id: str) -> None:
        url = gateway_target.server.ws + f"/session/{quote(session_id, safe='')}/ws"
        client = await RawClient.open(url)
        try:
            assert (await client.outcome(10)).close_code == CloseCode.SESSION_ENDED
        finally:
            client.writer.transport.abort()

    @fuzz(30)
    @given(session_id=ids)
    def case(session_id: str) -> None:
        run(play(session_id))

    with leaves_nothing_behind(gateway_target):
        case()


async def stall(target: Target, count: int) -> tuple[RawClient, list[int]]:
    """A client that sends `count` pings of about MAX_FRAME bytes each, paced within
    the rate limit, and reads nothing, until the server holds unsent bytes for it."""
    client = await target.open(recv_buffer=4096)
    base = 10 ** (MAX_FRAME - 200)
    seqs = [base + i for i in range(count)]
    for seq in seqs:
        client.write(encode_frame(TEXT, ping_text(seq)))
        await asyncio.sleep(1.2 / target.rate)  # under the allowance, burst or not
    server_port = int(target.url().split(":")[2].split("/")[0])
    client_port = client.writer.get_extra_info("sockname")[1]
    deadline = time.monotonic() + 10
    while not (tcp_send_queue(server_port, client_port) or 0):
        assert time.monotonic() < deadline, "the server never had to hold back"
        await asyncio.sleep(0.05)
    return client, seqs


async def prompt_pong(target: Target) -> None:
    """Another connection is served while one is stalled."""
    other = await target.open(1)
    other.write(encode_frame(TEXT, ping_text(7)) + encode_frame(PING, b"hi"))
    replies = await replies_until_pong(other, 7)
    assert replies.control_pongs == [b"hi"]
    await close_normally(other)


def test_a_reader_that_stops_is_pushed_back_then_served_or_let_go(target: Target) -> None:
    count = int(target.rate * 0.9)

    async def resume() -> None:
        client, seqs = await stall(target, count)
        await prompt_pong(target)
        pongs = [r for r in (await replies_until_pong(client, seqs[-1])).texts]
        assert [p["seq"] for p in pongs] == seqs  # nothing lost, nothing reordered
        await close_normally(client)

    async def vanish(reset: bool) -> None:
        client, _ = await stall(target, count)
        await prompt_pong(target)
        if reset:
            client.reset()
        else:
            client.drop()

    with leaves_nothing_behind(target):
        run(resume())
        run(vanish(reset=True))
        run(vanish(reset=False))
