"""A clock the test moves: expiry and idle timeouts need no sleeping."""

from __future__ import annotations


class FakeClock:
    """Epoch seconds that change only when a test sets `now`."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
