"""Warm-pool arithmetic. Pure: the backends feed it counts and act on the answer."""

from __future__ import annotations


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
