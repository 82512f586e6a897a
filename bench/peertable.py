"""What `bench.peers` prints at the end: one table with both systems and their ratio,
then one `peer` line per system and phase (the lines outside checks read)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.peerpools import Load
from bench.procs import percentile

SYSTEMS = ("pingpod", "agent-sandbox")
# Control-plane processes, in the table's order; each system's own controller follows.
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# On the real node also its processes, and its containers' cgroup as "pods".
NODE = ("kubelet", "containerd", "pods")
CONTROLLER = "controller"


@dataclass
class Result:
    """One system in one phase."""

    system: str
    phase: str
    load: Load
    refill: float | None = None  # pods/s from the end of the claims until the pool was full
    refill_note: str = ""  # why there is no rate: kept full, or not full in time
    api: float | None = None  # API requests per claim cycle
    cpu: dict[str, float] = field(default_factory=dict)  # CPU ms per claim cycle by process
    api_by: dict[str, float] = field(default_factory=dict)  # per cycle, by "VERB resource"
    notes: list[str] = field(default_factory=list)

    @property
    def cpu_total(self) -> float:
        return sum(self.cpu.values()) if self.cpu else math.nan


Row = tuple[str, Callable[[Result], float], str]  # label, value, format


def _rows(measured: Sequence[str]) -> list[Row]:
    def p(values: Callable[[Result], list[float]], q: float) -> Callable[[Result], float]:
        return lambda r: percentile(values(r), q)

    def cpu(name: str) -> Callable[[Result], float]:
        return lambda r: r.cpu.get(name, math.nan)

    return [
        ("answered p50 ms", p(lambda r: r.load.answered, 50), ".1f"),
        ("answered p99 ms", p(lambda r: r.load.answered, 99), ".1f"),
        ("ready p50 ms", p(lambda r: r.load.ready, 50), ".1f"),
        ("ready p99 ms", p(lambda r: r.load.ready, 99), ".1f"),
        ("warm", lambda r: r.load.outcomes["warm"], ".0f"),
        ("cold", lambda r: r.load.outcomes["cold"], ".0f"),
        ("refused", lambda r: r.load.refused, ".0f"),
        ("errors", lambda r: r.load.errors, ".0f"),
        ("refill pods/s", lambda r: math.nan if r.refill is None else r.refill, ".1f"),
        ("API requests/cycle", lambda r: math.nan if r.api is None else r.api, ".1f"),
        *((f"CPU ms/cycle {name}", cpu(name), ".2f") for name in measured),
        ("CPU ms/cycle total", lambda r: r.cpu_total, ".2f"),
    ]


def _cell(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def _ratio(ours: float, theirs: float) -> str:
    if math.isnan(ours) or math.isnan(theirs) or theirs == 0:
        return "-"
    return f"{ours / theirs:.2f}"


def table(results: Sequence[Result]) -> list[str]:
    """The side-by-side table, ratio = pingpod / agent-sandbox."""
    by = {(r.system, r.phase): r for r in results}
    phases = list(dict.fromkeys(r.phase for r in results))
    every = (*CONTROL_PLANE, *NODE, CONTROLLER)
    rows = _rows([name for name in every if any(name in r.cpu for r in results)])
    lines = [f"{'phase':<9} {'figure':<36} {SYSTEMS[0]:>10} {SYSTEMS[1]:>14} {'ratio':>7}"]
    for phase in phases:
        ours, theirs = by.get((SYSTEMS[0], phase)), by.get((SYSTEMS[1], phase))
        for n, (label, value, spec) in enumerate(rows):
            a = value(ours) if ours else math.nan
            b = value(theirs) if theirs else math.nan
            lines.append(
                f"{phase if n == 0 else '':<9} {label:<36} {_cell(a, spec):>10}"
                f" {_cell(b, spec):>14} {_ratio(a, b):>7}"
            )
        for result in (ours, theirs):
            if result is None:
                continue
            for note in ([result.refill_note] if result.refill_note else []) + result.notes:
                lines.append(f"{'':<9} {result.system}: {note}")
    return lines


def peer_line(result: Result) -> str:
    ready = result.load.ready
    return (
        f"peer system={result.system} phase={result.phase}"
        f" ready_p50={percentile(ready, 50):.1f} ready_p99={percentile(ready, 99):.1f}"
        f" warm={result.load.outcomes['warm']} cold={result.load.outcomes['cold']}"
        f" refused={result.load.refused} cpu_ms_per_cycle={result.cpu_total:.2f}"
    )
