"""The one alternating timer of the benchmarks: two or more callables timed call by call in one process.

On a shared machine load comes and goes; timing A then B in turn (and B then A on the next round, so
neither always runs on the other's warm caches) exposes both to the same load, which makes their ratio
steady where separate runs are not. The two-model comparisons (int8_speed, classifier_heads, stylizer_speed)
time through :func:`alternate`; ``artcam bench`` (``model_bench.measure_interleaved``) alternates whole rounds
of many calls per engine instead, since it also splits each call into transfer and compute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass
class Alternated:
    """Seconds per call, by name: wall clock and CPU time of the process (all threads)."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)


def alternate(calls: Mapping[str, Callable[[], Any]], runs: int, warmup: int = 3) -> Alternated:
    """``warmup`` untimed calls of each, then ``runs`` timed rounds, the order reversed every other round."""
    for _ in range(warmup):
        for f in calls.values():
            f()
    out = Alternated({k: [] for k in calls}, {k: [] for k in calls})
    items = list(calls.items())
    for i in range(runs):
        for name, f in items if i % 2 == 0 else items[::-1]:
            c0, t0 = time.process_time(), time.perf_counter()
            f()
            out.wall[name].append(time.perf_counter() - t0)
            out.cpu[name].append(time.process_time() - c0)
    return out
