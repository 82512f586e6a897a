"""Warm-pool arithmetic. Pure: the backends feed it counts and act on the answer."""

from __future__ import annotations

from services.provisioner.errors import LimitExceeded


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


def pool_empty_error() -> LimitExceeded:
    """Shed load when the pool is empty and enough cold starts are already under way.

    Each cold claim adds a pod start on top of the refill; past a bound, more of
    them only slow every start down, so the client is asked to retry instead.
    """
    return LimitExceeded(
        "pool_empty",
        "every warm pod is taken and new ones are starting; try again in a moment",
        retry_after=1,
    )
