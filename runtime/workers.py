"""Frame-parallel inference: several workers, each with its own stylizer, taking whichever frame is next.

On a CPU with few cores ONNX Runtime's intra-op threads scale poorly on a stylizer's small convolutions; two
sessions with one thread each, taking alternate frames, keep both cores busier (``--workers``). Each worker
owns its model session and its preprocessing buffers (an ``ImagePreprocessor`` reuses its buffers, so one
stylizer never serves two threads); the classifier is not duplicated.

Results then finish out of capture order. :class:`InOrder` puts them back: a live source shows a frame only
if no newer one was shown already (a late one is dropped and counted, never shown out of order); a finite
source writes every frame, in order, from a reorder buffer keyed by the frame's index.

``--workers auto`` (:func:`auto_workers`) picks two for a local CPU stylizer on a live source of at least
1280x720 on a machine with at least two usable CPUs, else one. It is a rule, not a start-up probe: measured
end to end with ``python -m artcam.benchmarks.realtime --workers 2`` against ``--workers 1``, two workers gave
HD frames more throughput at the cost of a frame's more latency (one thread per frame instead of two), while at
640x480 with the classifier on the same cores one worker already keeps camera rate (docs/benchmarks.md § HD).
"""

from __future__ import annotations

import os
from typing import Any

AUTO = "auto"
AUTO_MIN_PIXELS = 1280 * 720  # --workers auto: frames at least this large get two workers
MAX_WORKERS = 16


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells it, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_workers(shape: tuple[int, int], *, live: bool, local_cpu_stylizer: bool, cpus: int | None = None) -> int:
    """``--workers auto``: 2 for a stylizer on this machine's CPU, on a live source of at least 1280x720
    (``shape`` = (height, width)), with at least two usable CPUs; otherwise 1 (today's single worker)."""
    cpus = usable_cpus() if cpus is None else cpus
    if local_cpu_stylizer and live and cpus >= 2 and shape[0] * shape[1] >= AUTO_MIN_PIXELS:
        return 2
    return 1


class InOrder:
    """Results from several workers back in capture order (a frame's order is its ``FrameRecord.index``).

    ``push(item)`` takes one ``(frame, info, record)`` and returns those that may go to the sink now, in
    order. ``live``: at once if newer than the last shown, else nothing (``late`` counts it); finite sources:
    held until every earlier index has gone (indices are then 0, 1, 2, ... with none missing).
    """

    def __init__(self, live: bool):
        self.live = live
        self.late = 0  # live frames dropped because a newer one was shown first
        self._last = -1
        self._next = 0
        self._held: dict[int, Any] = {}

    def push(self, item) -> list:
        index = item[2].index
        if self.live:
            if index <= self._last:
                self.late += 1
                return []
            self._last = index
            return [item]
        self._held[index] = item
        ready = []
        while self._next in self._held:
            ready.append(self._held.pop(self._next))
            self._next += 1
        return ready

    @property
    def held(self) -> int:
        return len(self._held)
