"""Token buckets: pure rate-limit arithmetic with an injected clock.

Used for per-connection message rates (echo, gateway), per-client-IP session
creation and the pool's refill cap. No I/O, so it is tested without sockets.

Per-address budgets are the deployment's, not each replica's: with `shares`
replicas behind a load balancer that spreads one address's requests evenly,
each spends its share, so the address gets the configured budget in total
(give or take each replica's rounding) however many replicas serve.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """Allows `rate` events per second on average and bursts of `burst`."""

    rate: float
    burst: float
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        if self.tokens < 0:
            self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take `cost` tokens. Returns 0.0 on success, else seconds until it would succeed."""
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate

    def resize(self, rate: float, burst: float, now: float) -> None:
        """New limits from `now` on (what was earned so far, at the old rate, is kept)."""
        self._refill(now)
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, burst)

    def give(self, now: float, amount: float = 1.0) -> None:
        """Put `amount` tokens back (never past `burst`)."""
        self._refill(now)
        self.tokens = min(self.burst, self.tokens + amount)

    def available(self, now: float) -> int:
        self._refill(now)
        return math.floor(self.tokens)


class KeyedLimiter:
    """One bucket per key (client IP), least recently used keys evicted past `max_keys`."""

    def __init__(self, *, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float, *, shares: int = 1) -> float:
        """Take one from `key`'s bucket, this replica being one of `shares`."""
        rate, burst = self.rate / shares, max(1.0, self.burst / shares)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(rate=rate, burst=burst)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.resize(rate, burst, now)
        return bucket.take(now)


class ConnectionCounter:
    """Counts open connections per key against a cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def acquire(self, key: str, *, shares: int = 1) -> bool:
        """Count one more of `key`'s connections, this replica being one of `shares`."""
        count = self._open.get(key, 0)
        if count >= max(1, math.ceil(self.limit / shares)):
            return False
        self._open[key] = count + 1
        return True

    def release(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)
