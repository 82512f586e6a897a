"""WebSocket fuzzing of the echo server (`/ws`) and the gateway
(`/session/{id}/ws`), each a real uvicorn process, over real sockets.

Cases come from hypothesis (tests/services/wsfuzz.py) with one seed per run,
printed at the start; `PINGPOD_FUZZ_SEED=<seed>` replays a run and
`PINGPOD_FUZZ_SCALE=<n>` runs n times as many cases. Every case ends as the
contract says: a pong (each message answered exactly once, in order, with
strict JSON), the close code of services/common/wire.py `CloseCode`, or, when
the client itself vanishes, the server letting the connection go. After each
test the server under test must be back where it started, measured from
outside: its open descriptors by kind (/proc/<pid>/fd), its asyncio tasks
(`GET /_diag/tasks` of tests/services/diag_server.py, a test-only launcher)
and, for the gateway, `pingpod_websockets_open`; and its log must hold no
error and no traceback.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from scripts.procinfo import open_fds, tcp_send_queue
from services.common.wire import CloseCode
from tests.services.diag_server import DIAG_PATH
from tests.services.helpers import Server, new_session, start_server
from tests.services.rawws import (
    CLOSE,
    PING,
    TEXT,
    Opcode,
    RawClient,
    close_payload,
    encode_frame,
    reset_tcp,
)
from tests.services.wsfuzz import (
    MAX_FRAME,
    Drop,
    Message,
    Violation,
    drops,
    expected_reply,
    flood,
    messages,
    ping_text,
    strict_json,
    violations,
)

FUZZ_SEED = int(os.environ.get("PINGPOD_FUZZ_SEED") or secrets.randbits(32))
SCALE = float(os.environ.get("PINGPOD_FUZZ_SCALE") or 1)
GATEWAY_RATE = 50  # WS_MAX_MESSAGES_PER_SECOND of the gateway under test (its default)
ECHO_RATE = 100  # the echo server's fixed allowance
CASE_TIMEOUT = 30.0
CLOSE_WITHIN = 5.0  # seconds from a refused frame to the close frame


def fuzz(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """hypothesis with this run's seed, a bounded number of cases, no example database."""

    def wrap(test: Callable[..., None]) -> Callable[..., None]:
        configured = settings(
            max_examples=max(1, round(examples * SCALE)),
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(test)
        return seed(FUZZ_SEED)(configured)

    return wrap


def run(play: Any) -> None:
    asyncio.run(asyncio.wait_for(play, CASE_TIMEOUT))


# -- the servers under test ---------------------------------------------------------------------


@dataclass
class Target:
    name: str
    server: Server
    urls: list[str]  # WebSocket URLs to fuzz (the gateway: one per session)
    rate: int  # messages per second (and burst) a socket may send
    greets: bool  # the gateway says `upstream_ready` before pongs can flow

    @property
    def pid(self) -> int:
        return self.server.proc.pid

    def url(self, i: int = 0) -> str:
        return self.urls[i % len(self.urls)]

    async def open(self, i: int = 0, **kwargs: Any) -> RawClient:
        client = await RawClient.open(self.url(i), **kwargs)
        if self.greets:
            frame = await client.next_frame(10)
            assert frame is not None and frame.opcode is Opcode.TEXT, frame
            greeting = strict_json(bytes(frame.data).decode())
            assert greeting["event"] == "upstream_ready", greeting
        return client


def _diag_server(tmp: Path, env: dict[str, str], ready: str, *, metrics: bool = False) -> Server:
    return start_server("tests.services.diag_server", tmp, env, ready, metrics=metrics)


@pytest.fixture(scope="module")
def echo_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    env = {"DIAG_SERVICE": "services.echo", "POD_NAME": "fuzz-echo", "NODE_NAME": "fuzz-node"}
    server = _diag_server(tmp_path_factory.mktemp("echo"), env, "/health")
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
    server = _diag_server(tmp_path_factory.mktemp("gateway"), env, "/ready", metrics=True)
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


# -- what is left behind --------------------------------------------------------------------------


def _fd_kind(target: str) -> str:
    """`socket:[123]` -> `socket`; `anon_inode:[pidfd]` stays; a path stays."""
    kind, _, rest = target.partition(":[")
    return kind if rest and rest[:-1].isdigit() else target


@dataclass(frozen=True)
class Snapshot:
    fds: collections.Counter[str]
    tasks: collections.Counter[str]
    websockets_open: float | None

    def diff(self, other: Snapshot) -> str:
        def delta(a: collections.Counter[str], b: collections.Counter[str]) -> dict[str, int]:
            return {k: b[k] - a[k] for k in sorted(set(a) | set(b)) if a[k] != b[k]}

        return (
            f"fds {delta(self.fds, other.fds)}, tasks {delta(self.tasks, other.tasks)}, "
            f"websockets_open {self.websockets_open} -> {other.websockets_open}"
        )


def snapshot(target: Target) -> Snapshot:
    fds = collections.Counter(_fd_kind(t) for t in open_fds(target.pid))
    tasks = collections.Counter(httpx.get(target.server.url + DIAG_PATH).json()["names"])
    gauge: float | None = None
    if target.greets:
        for line in httpx.get(target.server.metrics_url).text.splitlines():
            if line.startswith("pingpod_websockets_open "):
                gauge = float(line.split()[1])
    return Snapshot(fds, tasks, gauge)


def steady(target: Target, timeout: float = 20) -> Snapshot:
    """A snapshot that holds still for a moment (nothing closing or starting)."""
    deadline = time.monotonic() + timeout
    last = snapshot(target)
    while True:
        time.sleep(0.2)
        now = snapshot(target)
        if now == last or time.monotonic() > deadline:
            return now
        last = now


def back_to(target: Target, before: Snapshot, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (now := snapshot(target)) != before:
        if time.monotonic() > deadline:
            pytest.fail(f"{target.name} did not get back to where it started: {before.diff(now)}")
        time.sleep(0.1)


def problems_in_log(log: Path, offset: int) -> list[str]:
    """Log lines from `offset` on that an operator would be paged for."""
    with log.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    bad = []
    for line in lines:
        try:
            level = json.loads(line).get("level", "")
        except ValueError:
            level = ""
        if level in ("ERROR", "CRITICAL") or "Traceback" in line:
            bad.append(line[:600])
    return bad


@contextlib.contextmanager
def leaves_nothing_behind(target: Target) -> Iterator[None]:
    """The body may do anything a client can; afterwards the server holds exactly
    what it held before and has logged no error."""
    before = steady(target)
    offset = target.server.log.stat().st_size
    try:
        yield
    except BaseException as exc:
        exc.add_note(f"ws fuzz seed {FUZZ_SEED}: replay with PINGPOD_FUZZ_SEED={FUZZ_SEED}")
        raise
    back_to(target, before)
    assert problems_in_log(target.server.log, offset) == []


# -- playing cases --------------------------------------------------------------------------------


@dataclass
class Replies:
    texts: list[dict[str, Any]]  # the server's answers, events left out
    control_pongs: list[bytes]


async def replies_until_pong(client: RawClient, seq: int) -> Replies:
    """Every answer up to the pong for `seq`; fails if the connection ends first."""
    replies = Replies([], [])
    while True:
        frame = await client.next_frame(10)
        assert frame is not None, f"the connection ended before the pong {seq}: {replies}"
        if frame.opcode is Opcode.CLOSE:
            close = client.protocol.close_rcvd
            pytest.fail(f"closed with {close} before the pong {seq}: {replies}")
        if frame.opcode is Opcode.PONG:
            replies.control_pongs.append(bytes(frame.data))
        if frame.opcode is not Opcode.TEXT:
            continue
        reply = strict_json(bytes(frame.data).decode())
        assert isinstance(reply, dict), reply
        if reply.get("type") == "event":
            continue
        replies.texts.append(reply)
        if reply.get("type") == "pong" and reply.get("seq") == seq:
            return replies


async def close_normally(client: RawClient) -> None:
    """Close with 1000: the server must echo it and end the connection."""
    await client.send(CLOSE, close_payload(1000))
    outcome = await client.outcome(10)
    client.writer.close()
    assert outcome.close_code == 1000


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
