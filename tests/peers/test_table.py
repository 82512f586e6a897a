"""What `bench.peers` prints at the end: the `peer` lines outside checks read, and the
ratio column of the side-by-side table."""

from __future__ import annotations

from collections import Counter

from bench.peerpools import Load
from bench.peertable import CONTROLLER, Result, peer_line, table


def result(system: str, ready: list[float], cpu: float, **outcomes: int) -> Result:
    load = Load(answered=ready, ready=ready, outcomes=Counter(outcomes))
    return Result(system, "rate20", load, refill=10.0, api=15.0, cpu={CONTROLLER: cpu})


def test_peer_line_has_the_fields_in_order() -> None:
    ours = result("pingpod", [10.0, 20.0, 30.0], 12.5, warm=2, cold=1, **{"429": 4, "503": 1})
    assert peer_line(ours) == (
        "peer system=pingpod phase=rate20 ready_p50=20.0 ready_p99=30.0"
        " warm=2 cold=1 refused=5 cpu_ms_per_cycle=12.50"
    )


def test_table_ratio_is_ours_over_theirs_and_dash_without_a_figure() -> None:
    ours = result("pingpod", [10.0], 5.0, warm=1)
    ours.cpu["kwok"] = 3.0  # measured in one system's run only
    lines = table([ours, result("agent-sandbox", [40.0], 20.0, warm=1, **{"not Ready in time": 2})])
    rows = {line[10:46].strip(): line[46:].split() for line in lines[1:]}
    assert rows["ready p50 ms"] == ["10.0", "40.0", "0.25"]
    assert rows["CPU ms/cycle total"] == ["8.00", "20.00", "0.40"]
    assert rows["errors"] == ["0", "2", "0.00"]
    assert rows["CPU ms/cycle kwok"] == ["3.00", "-", "-"]
    # A process neither run measured (the real node's, on kwok) has no row.
    assert "CPU ms/cycle kubelet" not in rows
