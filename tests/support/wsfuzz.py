"""WebSocket fuzz cases: hypothesis strategies, and what each case must end with.

Three families, each sent on a connection of its own:

- `Message`: a text message (valid pings, other JSON, any text, nasty inputs),
  sent whole or in fragments with control pings between them. The server
  answers every message with exactly one JSON text frame, a pong exactly when
  the message is a ping (`expected_reply`), and every control ping with a pong.
- `Violation`: after a few good messages, one frame the server must refuse:
  its close code is `Violation.code` (services/common/wire.py `CloseCode`, or,
  for a close frame the client starts, the client's own code echoed back).
- `Drop`: after a few messages, the client goes without a goodbye: a TCP
  reset or a bare FIN, maybe in the middle of a frame, or half-closes.
"""

from __future__ import annotations

import itertools
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

from hypothesis import strategies as st

from services.common.wire import CloseCode
from tests.support.rawws import BINARY, CLOSE, CONT, PING, PONG, TEXT, close_payload, encode_frame

MAX_FRAME = 4096  # MAX_FRAME_BYTES of both servers under test (the default)
VALID_OPCODES = (CONT, TEXT, BINARY, CLOSE, PING, PONG)
RESERVED_OPCODES = tuple(op for op in range(16) if op not in VALID_OPCODES)
# Close codes a peer may send (RFC 6455 7.4); the rest must be refused with 1002.
SENDABLE_CLOSE = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str) -> Any:
    """JSON as a browser's JSON.parse reads it: NaN and Infinity are errors."""
    return json.loads(text, parse_constant=_reject_constant)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def expected_reply(data: bytes) -> Literal["pong", "error"]:
    """The contract (docs/api.md): a JSON object with type "ping", an integer
    seq and a finite number t is answered with a pong; anything else with an error."""
    try:
        message = json.loads(data.decode())
    except (ValueError, RecursionError):
        return "error"
    if not isinstance(message, dict) or message.get("type") != "ping":
        return "error"
    seq, t = message.get("seq"), message.get("t")
    finite = _is_int(t) or (isinstance(t, float) and math.isfinite(t))
    return "pong" if _is_int(seq) and finite else "error"


def ping_text(seq: int, t: float = 1.0) -> bytes:
    return json.dumps({"type": "ping", "seq": seq, "t": t}).encode()


# -- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    data: bytes  # the whole text message, UTF-8
    cuts: tuple[int, ...] = ()  # fragment boundaries, byte offsets inside the message
    pings: tuple[bytes, ...] = ()  # control pings, one after each of the first fragments

    def parts(self) -> list[bytes]:
        bounds = [0, *self.cuts, len(self.data)]
        return [self.data[a:b] for a, b in itertools.pairwise(bounds)]

    def frames(self) -> list[bytes]:
        parts = self.parts()
        out: list[bytes] = []
        for i, part in enumerate(parts):
            out.append(encode_frame(TEXT if i == 0 else CONT, part, fin=i == len(parts) - 1))
            if i < len(self.pings):
                out.append(encode_frame(PING, self.pings[i]))
        return out


NASTY_TEXTS = [
    "",
    " ",
    "null",
    "[]",
    '"ping"',
    "{}",
    '{"type":"ping"}',
    '{"type":"ping","seq":1,"t":NaN}',
    '{"type":"ping","seq":1,"t":Infinity}',
    '{"type":"ping","seq":1,"t":-Infinity}',
    '{"type":"ping","seq":1,"t":1e999}',
    '{"type":"ping","seq":true,"t":1}',
    '{"type":"ping","seq":1,"t":false}',
    '{"type":"ping","seq":1.5,"t":1}',
    '{"type":"ping","seq":"1","t":1}',
    '{"type":"ping","seq":null,"t":1}',
    '{"type":"ping","seq":1,"t":"now"}',
    '{"type":"PING","seq":1,"t":1}',
    '{"type":"ping","type":"pong","seq":1,"t":1}',
    '{"type":"pong","seq":1,"t":1}',
    '{"type":"ping","seq":1,"t":1',
    "[" * 2000,
    '{"a":' * 1000,
    "[" * 500 + "]" * 500,
    '{"type":"ping","seq":' + "9" * 4000 + ',"t":1}',
    '{"type":"ping","seq":-' + "9" * 3000 + ',"t":1e308}',
    "\x00\x01\x02",
    "\u2028\u2029\ufeff",
    "\U0001f3d3 ping",
]

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def _ping_like(draw: st.DrawFn) -> str:
    """Pings, and objects one field away from a ping."""
    message: dict[str, Any] = {"type": "ping", "seq": draw(st.integers()), "t": draw(_numbers)}
    change = draw(st.sampled_from(["none", "drop", "retype", "extra"]))
    if change == "drop":
        del message[draw(st.sampled_from(sorted(message)))]
    elif change == "retype":
        message[draw(st.sampled_from(sorted(message)))] = draw(_json_values)
    elif change == "extra":
        message[draw(st.text(max_size=10))] = draw(_json_values)
    return json.dumps(message, ensure_ascii=draw(st.booleans()))


@st.composite
def _padded_ping(draw: st.DrawFn) -> str:
    """A valid ping of up to exactly MAX_FRAME bytes."""
    base = {"type": "ping", "seq": draw(st.integers(0, 2**53)), "t": 1, "pad": ""}
    room = MAX_FRAME - len(json.dumps(base).encode())
    base["pad"] = "x" * draw(st.integers(max(0, room - 64), room))
    return json.dumps(base)


texts = st.one_of(
    _ping_like(),
    st.builds(json.dumps, _json_values),
    st.text(max_size=300),
    st.sampled_from(NASTY_TEXTS),
    _padded_ping(),
).filter(lambda text: len(text.encode()) <= MAX_FRAME)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    data = draw(texts).encode()
    cuts: tuple[int, ...] = ()
    if len(data) > 1 and draw(st.booleans()):
        count = draw(st.integers(1, min(6, len(data) - 1)))
        # Anywhere, even inside a UTF-8 sequence: only the whole message must be UTF-8.
        cuts = tuple(
            sorted(draw(st.sets(st.integers(1, len(data) - 1), min_size=1, max_size=count)))
        )
    pings = tuple(draw(st.lists(st.binary(max_size=125), max_size=len(cuts) + 1)))
    return Message(data=data, cuts=cuts, pings=pings)


# -- violations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    kind: str
    frames: tuple[bytes, ...]
    code: int  # the close code the server must end with
    before: tuple[Message, ...] = field(default=())


def _invalid_utf8(draw: st.DrawFn) -> bytes:
    """Some text with one byte sequence that is not UTF-8 (a stray continuation byte,
    an overlong form, a surrogate, a code point past U+10FFFF, a truncated sequence)."""
    text = draw(st.text(max_size=100))
    bad = draw(
        st.sampled_from(
            [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"]
        )
    )
    # Inserted between whole characters, so that `bad` is the only fault.
    at = draw(st.integers(0, len(text)))
    return text[:at].encode() + bad + text[at:].encode()


@st.composite
def violations(draw: st.DrawFn) -> Violation:
    kind = draw(
        st.sampled_from(
            [
                "oversized",
                "oversized_fragments",
                "oversized_binary",
                "binary",
                "binary_fragments",
                "invalid_utf8",
                "invalid_utf8_fragments",
                "reserved_bits",
                "reserved_opcode",
                "fragmented_control",
                "long_control",
                "stray_continuation",
                "interrupted_message",
                "unmasked",
                "close_too_short",
                "close_bad_code",
                "close_bad_reason",
                "close_by_client",
                "close_empty",
            ]
        )
    )
    small = draw(st.binary(min_size=1, max_size=64))
    frames: list[bytes]
    code: int
    if kind == "oversized":
        frames = [encode_frame(TEXT, b"x" * draw(st.integers(MAX_FRAME + 1, 4 * MAX_FRAME)))]
        code = CloseCode.MESSAGE_TOO_BIG
    elif kind == "oversized_fragments":
        sizes = draw(st.lists(st.integers(1, MAX_FRAME), min_size=2, max_size=5))
        sizes[-1] += max(0, MAX_FRAME + 1 - sum(sizes))
        frames = [
            encode_frame(TEXT if i == 0 else CONT, b"y" * n, fin=i == len(sizes) - 1)
            for i, n in enumerate(sizes)
        ]
        code = CloseCode.MESSAGE_TOO_BIG
    elif kind == "oversized_binary":
        frames = [encode_frame(BINARY, b"\x00" * draw(st.integers(MAX_FRAME + 1, 2 * MAX_FRAME)))]
        code = CloseCode.MESSAGE_TOO_BIG
    elif kind == "binary":
        frames = [encode_frame(BINARY, draw(st.binary(max_size=MAX_FRAME)))]
        code = CloseCode.UNSUPPORTED_DATA
    elif kind == "binary_fragments":
        frames = [encode_frame(BINARY, small, fin=False), encode_frame(CONT, small)]
        code = CloseCode.UNSUPPORTED_DATA
    elif kind == "invalid_utf8":
        frames = [encode_frame(TEXT, _invalid_utf8(draw))]
        code = CloseCode.INVALID_DATA
    elif kind == "invalid_utf8_fragments":
        data = _invalid_utf8(draw)
        at = draw(st.integers(0, len(data)))
        frames = [encode_frame(TEXT, data[:at], fin=False), encode_frame(CONT, data[at:])]
        code = CloseCode.INVALID_DATA
    elif kind == "reserved_bits":
        opcode = draw(st.sampled_from([TEXT, BINARY, PING]))
        frames = [encode_frame(opcode, small, rsv=draw(st.integers(1, 7)))]
        code = CloseCode.PROTOCOL_ERROR
    elif kind == "reserved_opcode":
        frames = [encode_frame(draw(st.sampled_from(RESERVED_OPCODES)), small)]
        code = CloseCode.PROTOCOL_ERROR
    elif kind == "fragmented_control":
        opcode = draw(st.sampled_from([PING, PONG, CLOSE]))
        payload = close_payload(1000) if opcode == CLOSE else small
        frames = [encode_frame(opcode, payload, fin=False)]
        code = CloseCode.PROTOCOL_ERROR
    elif kind == "long_control":
        opcode = draw(st.sampled_from([PING, PONG]))
        frames = [encode_frame(opcode, b"p" * draw(st.integers(126, 1000)))]
        code = CloseCode.PROTOCOL_ERROR
    elif kind == "stray_continuation":
        frames = [encode_frame(CONT, small, fin=draw(st.booleans()))]
        code = CloseCode.PROTOCOL_ERROR
    elif kind == "interrupted_message":
        frames = [
            encode_frame(TEXT, b'{"type":', fin=False),
            encode_frame(draw(st.sampled_from([TEXT, BINARY])), small),
        ]
        code = CloseCode.PROTOCOL_ERROR
    elif kind == "unmasked":
        frames = [encode_frame(draw(st.sampled_from([TEXT, PING])), small, masked=False)]
        code = CloseCode.PROTOCOL_ERROR
    elif kind == "close_too_short":
        frames = [encode_frame(CLOSE, small[:1])]
        code = CloseCode.PROTOCOL_ERROR
    elif kind == "close_bad_code":
        bad = draw(
            st.integers(0, 999)
            | st.sampled_from([1004, 1005, 1006, 1015])
            | st.integers(1016, 2999)
            | st.integers(5000, 65535)
        )
        frames = [encode_frame(CLOSE, struct.pack("!H", bad))]
        code = CloseCode.PROTOCOL_ERROR
    elif kind == "close_bad_reason":
        reason = _invalid_utf8(draw)[:100]
        frames = [encode_frame(CLOSE, close_payload(1000, reason))]
        code = CloseCode.INVALID_DATA
    elif kind == "close_by_client":
        code = draw(st.sampled_from(SENDABLE_CLOSE) | st.integers(3000, 4999))
        reason = draw(st.text(max_size=30)).encode()[:120]
        frames = [encode_frame(CLOSE, close_payload(code, reason))]
    else:  # close_empty: no status code at all, which the close echoes (1005: no status)
        frames = [encode_frame(CLOSE, b"")]
        code = 1005
    before = tuple(draw(st.lists(messages(), max_size=3)))
    return Violation(kind=kind, frames=tuple(frames), code=code, before=before)


def flood(count: int) -> Violation:
    """`count` pings at once: more than the server's per-second allowance."""
    frames = tuple(encode_frame(TEXT, ping_text(seq)) for seq in range(count))
    return Violation(kind="flood", frames=frames, code=CloseCode.POLICY_VIOLATION)


# -- abrupt endings ---------------------------------------------------------------------------


Ending = Literal["reset", "fin", "half_close"]
ENDINGS: tuple[Ending, ...] = ("reset", "fin", "half_close")


@dataclass(frozen=True)
class Drop:
    how: Ending
    before: tuple[Message, ...]
    partial: bytes  # the first bytes of one more frame, cut short


@st.composite
def drops(draw: st.DrawFn) -> Drop:
    before = tuple(draw(st.lists(messages(), max_size=5)))
    partial = b""
    if draw(st.booleans()):
        whole = encode_frame(TEXT, draw(st.binary(min_size=1, max_size=300)))
        partial = whole[: draw(st.integers(1, len(whole) - 1))]
    return Drop(how=draw(st.sampled_from(ENDINGS)), before=before, partial=partial)
