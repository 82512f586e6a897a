"""What a server holds, counted from outside: its open descriptors by kind
(/proc/<pid>/fd), its asyncio tasks (`GET /_diag/tasks`) and, for the gateway,
`pingpod_websockets_open`; and whether its log holds an error. A test may do
anything a client can inside `leaves_nothing_behind`; afterwards the server
must hold exactly what it held before."""

from __future__ import annotations

import collections
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts.procinfo import open_fds
from tests.support.diag_server import DIAG_PATH
from tests.support.fuzzing import FUZZ_SEED
from tests.support.wstarget import Target


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
