"""The warm pool's rules, written once for every backend, without I/O.

Like a sans-I/O protocol object, `PoolCore` never awaits, sleeps or reads a
clock: its adapter (`backends.pooled.PooledBackend`) feeds it counts and
times and acts on the answers. So the capacity check, the cold-start bound,
the refill count, trimming and reaping are tested with plain numbers
(docs/architecture.md, "Pool policy").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from services.common.ratelimit import TokenBucket
from services.provisioner.errors import ErrorCode, LimitExceeded
from services.provisioner.sessions import EndReason, end_reason
from services.provisioner.settings import Settings

M = TypeVar("M")


@dataclass(frozen=True, kw_only=True)
class PoolStatus:
    warm: int  # Ready and free
    starting: int  # pool members not Ready yet, and starts asked for
    assigned: int  # sessions
    target: int
    capacity: int


@dataclass(frozen=True, kw_only=True)
class SessionTimes:
    """What reaping needs to know of a session."""

    key: str
    expires_at: float  # epoch seconds
    last_active: float


def pods_to_start(
    *, warm: int, starting: int, assigned: int, target: int, max_pods: int, budget: int
) -> int:
    """How many pool pods to start now.

    Keeps `warm + starting` at `target`, never lets the total pass `max_pods`
    (the cost cap), and never exceeds `budget` (the refill rate cap).
    """
    want = target - (warm + starting)
    room = max_pods - (warm + starting + assigned)
    return max(0, min(want, room, budget))


def max_pods(*, max_sessions: int, pool_size: int) -> int:
    """Every session may hold a pod while the pool is full."""
    return max_sessions + pool_size


class Demand:
    """The warm pool's target, following demand (docs/architecture.md, "Adaptive target").

    target = base + floor(claim rate x time-to-Ready x headroom), at most `cap`. The
    claim rate is an exponentially weighted rate with a `window`-second time constant,
    so a burst moves it within a second; time-to-Ready is a moving average of what
    the driver measures. The target grows at once and shrinks by one member per
    `shrink_every` seconds, so a lull between bursts does not throw the pool away
    (compare Agones' buffer autoscaler).
    """

    def __init__(
        self,
        *,
        base: int,
        cap: int,
        window: float = 1.0,
        headroom: float = 2.0,
        shrink_every: float = 2.0,
        ready_seconds: float = 1.0,
    ) -> None:
        self.base = base
        self.cap = max(base, cap)
        self.window = window
        self.headroom = headroom
        self.shrink_every = shrink_every
        self.ready_seconds = ready_seconds  # moving average, seconds from start to Ready
        self._timed = False
        self.target = base
        self._rate = 0.0  # claims per second, as of `_rate_at`
        self._rate_at = 0.0
        self._changed_at = 0.0

    def rate(self, mono: float) -> float:
        return self._rate * math.exp(-max(0.0, mono - self._rate_at) / self.window)

    def claimed(self, mono: float) -> None:
        self._rate = self.rate(mono) + 1 / self.window
        self._rate_at = mono

    def ready_after(self, seconds: float, weight: float = 0.2) -> None:
        """A member became Ready `seconds` after its start was asked for."""
        if not self._timed:  # the first measurement replaces the initial guess
            self.ready_seconds, self._timed = seconds, True
        self.ready_seconds += weight * (seconds - self.ready_seconds)

    def update(self, mono: float) -> int:
        # Claims expected while a new member starts (with headroom), rounded down: a
        # lone claim now and then does not move the target.
        extra = math.floor(self.rate(mono) * self.ready_seconds * self.headroom)
        want = min(self.cap, self.base + extra)
        if want >= self.target:
            if want > self.target:
                self._changed_at = mono
            self.target = want
        elif mono - self._changed_at >= self.shrink_every:
            self.target -= 1
            self._changed_at = mono
        return self.target


class PoolCore:
    """The pool's counters and decisions. Times are passed in: `now` is epoch
    seconds for sessions, `mono` monotonic seconds for the refill rate."""

    def __init__(
        self,
        *,
        pool_size: int,
        max_sessions: int,
        refill_per_second: float,
        idle_timeout: float,
        max_cold_starts: int,
        claim_timeout: float = 1.5,
        max_starts: int | None = None,
        headroom: float = 2.0,
    ) -> None:
        self.pool_size = pool_size
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.max_cold_starts = max_cold_starts
        self.claim_timeout = claim_timeout
        # Pod starts the driver runs at once (None: no bound of its own). With a bound,
        # a cold claim starts no pod itself: it waits for the pool's next one, and the
        # refill counts it as demand, so starts in flight never pass the bound.
        self.max_starts = max_starts
        self.demand_estimate = Demand(base=pool_size, cap=max_sessions, headroom=headroom)
        self.cold = 0  # claims on the cold path (starting a pod, or waiting for one)
        self.refilling = 0  # pool starts asked of the driver and not finished
        # A full pool at once, or one second's worth of starts when that is more.
        burst = max(1, pool_size, math.ceil(refill_per_second))
        self._bucket = TokenBucket(rate=refill_per_second, burst=burst)

    @classmethod
    def from_settings(cls, settings: Settings, *, max_starts: int | None = None) -> PoolCore:
        return cls(
            pool_size=settings.pool_size,
            max_sessions=settings.max_sessions,
            refill_per_second=settings.refill_per_second,
            idle_timeout=settings.session_idle_timeout,
            max_cold_starts=settings.max_cold_starts,
            claim_timeout=settings.claim_timeout,
            max_starts=max_starts,
            headroom=settings.pool_headroom,
        )

    # claims

    def check_capacity(self, assigned: int) -> None:
        if assigned >= self.max_sessions:
            raise LimitExceeded(
                ErrorCode.AT_CAPACITY,
                f"all {self.max_sessions} session slots are in use; try again shortly",
                retry_after=5,
            )

    def begin_cold(self) -> None:
        """Count a cold claim, or shed it when enough are already waiting.

        Each cold claim waits for a pod start; past a bound, more of them only
        slow every start down and queue visitors, so the client is asked to
        retry instead. Pair with `end_cold`.
        """
        if self.cold >= self.max_cold_starts:
            raise LimitExceeded(
                ErrorCode.POOL_EMPTY,
                "every warm pod is taken and new ones are starting; try again in a moment",
                retry_after=1,
            )
        self.cold += 1

    def end_cold(self) -> None:
        self.cold -= 1

    def cold_budget(self, waited: float) -> float:
        """Seconds a cold claim may still wait, `waited` seconds after the claim began."""
        return self.claim_timeout - waited

    def cold_too_slow(self) -> LimitExceeded:
        """The answer to a cold claim whose budget ran out: shed, not queued."""
        return LimitExceeded(
            ErrorCode.POOL_EMPTY,
            "no pod became free within the claim's time; try again in a moment",
            retry_after=1,
        )

    # the pool

    def status(self, *, ready: int, unready: int, assigned: int) -> PoolStatus:
        """From the driver's warm members (Ready or not) and its session count."""
        return PoolStatus(
            warm=ready,
            starting=unready + self.refilling,
            assigned=assigned,
            target=self.demand_estimate.target,
            capacity=self.max_sessions,
        )

    def claimed(self, mono: float) -> None:
        """A member was taken (by any replica): one start more in the refill's budget, so
        the pool is refilled as fast as claims empty it; `REFILL_PER_SECOND` bounds the
        starts beyond that (a growing target, failed starts)."""
        self.demand_estimate.claimed(mono)
        self._bucket.give(mono)

    def member_ready(self, seconds: float) -> None:
        self.demand_estimate.ready_after(seconds)

    def update_target(self, mono: float) -> int:
        return self.demand_estimate.update(mono)

    def demand(self) -> int:
        """Free members wanted: the target, plus the cold claims waiting for the pool's starts."""
        return self.demand_estimate.target + (self.cold if self.max_starts is not None else 0)

    def refill(self, status: PoolStatus, mono: float) -> int:
        """How many members to start now; they count as `refilling` until `refilled()`.

        Never more than `max_starts` in flight: a pass asks only for free places, so
        refill work never queues behind itself.
        """
        budget = self._bucket.available(mono)
        if self.max_starts is not None:
            budget = min(budget, self.max_starts - self.refilling)
        waiting = self.demand() - self.demand_estimate.target  # sessions holding no pod yet
        n = pods_to_start(
            warm=status.warm,
            starting=status.starting,
            assigned=max(0, status.assigned - waiting),
            target=self.demand(),
            max_pods=max_pods(max_sessions=self.max_sessions, pool_size=self.pool_size),
            budget=budget,
        )
        for _ in range(n):
            self._bucket.take(mono)
        self.refilling += n
        return n

    def refilled(self) -> None:
        """One start asked for by `refill` has finished (or failed)."""
        self.refilling -= 1

    def trim(self, status: PoolStatus, warm: Sequence[tuple[M, bool]]) -> list[M]:
        """Warm members beyond the target (POOL_SIZE lowered), not-Ready ones first."""
        present = status.warm + status.starting
        if self.max_starts is not None:
            present -= self.refilling  # not members yet: a start for a claim that gave up
        excess = present - self.demand()
        if excess <= 0:
            return []
        return [member for member, _ in sorted(warm, key=lambda item: item[1])][:excess]

    # sessions

    def expired(self, sessions: Iterable[SessionTimes], now: float) -> list[tuple[str, EndReason]]:
        """Sessions to end now, and why."""
        due = []
        for session in sessions:
            reason = end_reason(
                now=now,
                expires_at=session.expires_at,
                last_active=session.last_active,
                idle_timeout=self.idle_timeout,
            )
            if reason is not None:
                due.append((session.key, reason))
        return due
