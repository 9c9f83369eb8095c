"""Frame-parallel inference: several workers, each with its own stylizer, taking whichever frame is next.

On a CPU with few cores ONNX Runtime's intra-op threads scale poorly on a stylizer's small convolutions; two
sessions with one thread each, taking alternate frames, can keep both cores busier (``--workers``). Each worker
owns its model session and its preprocessing buffers (an ``ImagePreprocessor`` reuses its buffers, so one
stylizer never serves two threads); the classifier is not duplicated.

Results then finish out of capture order. :class:`InOrder` puts them back: a live source shows a frame only
if no newer one was shown already (a late one is dropped and counted, never shown out of order); a finite
source writes every frame, in order, from a reorder buffer keyed by the frame's index.

``--workers auto``: one worker, except for a local CPU stylizer on a live source of at least 1280x720 on a
machine with two or more usable CPUs (:func:`auto_workers`), where a start-up probe (:func:`probe`, like
``--precision auto``'s) times one session with ONNX Runtime's threads against two one-thread sessions taking
alternate frames, on the run's frame size, alternating, and keeps two only when they give at least
``PROBE_MARGIN`` more frames a second: each frame then takes about twice as long (one thread instead of two), so
a small gain is not worth the latency. Why a probe and not a rule: model only, two sessions give INT8 1.35x
the frames of one at 1280x720 on a quiet 2-core machine, but with the cores shared by another busy process two
workers give no more frames end to end (slightly fewer) and twice the latency. At 640x480 with the classifier on
its own thread two workers gave no more frames either (end to end, under load), so small frames are not probed.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .tasks import Stylizer

AUTO = "auto"  # --workers auto; also FrameProcessor(every=AUTO): classify as often as there is time for
AUTO_MIN_PIXELS = 1280 * 720  # --workers auto: frames at least this large get two workers
MAX_WORKERS = 16
PROBE_FRAMES = 4  # frames per timed round of each way
PROBE_ROUNDS = 2  # timed rounds of each, alternating, after one untimed round of each
PROBE_MARGIN = 0.1  # two workers only when they give at least 10% more frames a second


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS tells it, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_workers(shape: tuple[int, int], *, live: bool, local_cpu_stylizer: bool, cpus: int | None = None) -> int:
    """``--workers auto``'s candidates: 2 (to be probed) for a stylizer on this machine's CPU, on a live source
    of at least 1280x720 (``shape`` = (height, width)), with at least two usable CPUs; otherwise 1."""
    cpus = usable_cpus() if cpus is None else cpus
    if local_cpu_stylizer and live and cpus >= 2 and shape[0] * shape[1] >= AUTO_MIN_PIXELS:
        return 2
    return 1


def probe(single: Stylizer, pair: list[Stylizer], shape: tuple[int, int], frames: int = PROBE_FRAMES,
          rounds: int = PROBE_ROUNDS) -> dict[int, float]:
    """Milliseconds per frame of throughput, by worker count: ``single`` stylizing ``frames`` mid-grey frames of
    ``shape`` one after another, against the stylizers of ``pair`` each on a thread of its own taking every
    other one; alternating rounds so that other load on the machine hits both alike; the median round."""
    frame = np.full((*shape, 3), 128, np.uint8)
    errors: list[BaseException] = []

    def share(st: Stylizer, n: int) -> None:
        try:
            for _ in range(n):
                st.stylize(frame)
        except BaseException as e:  # raised on the caller's thread below
            errors.append(e)

    def together() -> None:
        threads = [threading.Thread(target=share, args=(st, -(-frames // len(pair)))) for st in pair]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise errors[0]

    ways = {1: lambda: share(single, frames), len(pair): together}
    times: dict[int, list[float]] = {n: [] for n in ways}
    for r in range(rounds + 1):
        for n, run in ways.items():
            t = time.perf_counter()
            run()
            if errors:
                raise errors[0]
            if r:  # the first round pays one-time costs
                times[n].append((time.perf_counter() - t) * 1e3 / frames)
    return {n: float(np.median(v)) for n, v in times.items()}


def keep_pair(ms: dict[int, float]) -> bool:
    """Whether the probe's two workers give at least ``PROBE_MARGIN`` more frames a second than one."""
    return 1e3 / ms[2] >= (1 + PROBE_MARGIN) * 1e3 / ms[1]


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
