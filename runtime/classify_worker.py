"""Classification off the stylizer's critical path: a thread of its own that classifies the newest frame.

The inference thread hands a frame over with :meth:`ClassifyWorker.submit` and goes on stylizing; it
never waits for the classifier. The hand-over is a one-frame mailbox: a frame the worker has not yet
taken is replaced by a newer one, so a slow classifier falls behind in time (its result gets older),
never in memory or in the stylizer's frame rate. :meth:`ClassifyWorker.latest` returns the newest result
with its age, which the HUD, the web viewer and the run summary show.

The worker runs at a lower CPU priority (``nice`` +10 for its thread, where the OS allows it) and, with a
classifier loaded on one intra-op thread, all of the classifier's work is on that thread: on a machine
with no core to spare the stylizer's threads come first, and the classifier takes the rest.
:class:`ClassifyBudget` (``--classify-every auto``) picks how often to offer it a frame from the
stylizer's measured idle time.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .tasks import Classifier, Prediction

WORKER_NICE = 10  # the worker thread's niceness: a nice-0 thread gets ~10x its CPU share when both want a core
AUTO_MAX_EVERY = 30  # --classify-every auto classifies at least every 30th frame (once a second at 30 FPS)


def lower_thread_priority(nice: int) -> bool:
    """Raise the calling thread's niceness by ``nice`` (Linux: per thread); False where the OS does not allow it."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
        return True
    except OSError:
        return False


class ClassifyBudget:
    """``--classify-every auto``: offer the classifier a frame only as often as the stylizer leaves time for it.

    The inference thread measures two moving averages: the interval between frames it takes (the camera's
    rate, or its own when it falls behind) and the time it is busy with each. Their difference is its idle
    time per frame; a classification taking ``classify_ms`` fits every ``ceil(classify_ms / idle)`` frames,
    bounded to 1..``max_every`` so that a stylizer with no idle time still gets a fresh label now and then.
    ``workers``: inference threads taking frames in turn; each then has ``workers`` intervals per frame.
    """

    def __init__(self, max_every: int = AUTO_MAX_EVERY, alpha: float = 0.1, workers: int = 1):
        self.max_every, self.alpha, self.workers = int(max_every), float(alpha), int(workers)
        self.interval_ms: float | None = None
        self.busy_ms: float | None = None
        self._last_start: float | None = None

    def _ema(self, old: float | None, new: float) -> float:
        return new if old is None else old + self.alpha * (new - old)

    def frame_started(self, t: float) -> None:
        if self._last_start is not None:
            self.interval_ms = self._ema(self.interval_ms, (t - self._last_start) * 1e3)
        self._last_start = t

    def frame_done(self, busy_ms: float) -> None:
        self.busy_ms = self._ema(self.busy_ms, busy_ms)

    def every(self, classify_ms: float | None) -> int:
        """How many frames apart to classify now (1 before anything is measured: the first label comes fast)."""
        if classify_ms is None or self.interval_ms is None or self.busy_ms is None:
            return 1
        idle = self.interval_ms * self.workers - self.busy_ms
        if idle <= 0:
            return self.max_every
        return max(1, min(self.max_every, math.ceil(classify_ms / idle)))


@dataclass
class ClassifyResult:
    """The newest predictions and which frame they are of."""

    predictions: list[Prediction] = field(default_factory=list)
    frame_index: int = -1  # -1: nothing classified yet
    t_frame: float = 0.0  # perf_counter time the classified frame was handed over
    infer_ms: float = 0.0

    def age_ms(self, now: float | None = None) -> float | None:
        """How old the predictions are: from their frame's hand-over to ``now``; None before the first."""
        if self.frame_index < 0:
            return None
        return ((time.perf_counter() if now is None else now) - self.t_frame) * 1e3


class ClassifyWorker:
    """Classify the newest submitted frame on a daemon thread; never blocks the submitter.

    ``submit`` copies the frame (the caller may draw on or reuse its array), so it costs one memcpy.
    An exception in the classifier is kept and raised by the next ``submit`` or ``latest`` call, on the
    caller's thread, so the pipeline reports it like any other inference error.
    """

    def __init__(self, classifier: Classifier, nice: int = WORKER_NICE):
        self.classifier = classifier
        self.nice = nice
        self.lowered = False  # whether the thread's priority was lowered
        self._tid: int | None = None  # the worker thread's OS id, once it runs
        self._cond = threading.Condition()
        self._pending: tuple[np.ndarray, int, float] | None = None
        self._result = ClassifyResult()
        self._error: BaseException | None = None
        self._stop = False
        self.submitted = 0
        self.replaced = 0  # frames submitted but replaced by a newer one before the worker took them
        self.runs = 0
        self._infer_ms: list[float] = []
        self._thread = threading.Thread(target=self._loop, name="artcam-classify", daemon=True)
        self._thread.start()

    def submit(self, frame: np.ndarray, index: int) -> None:
        """Hand over a frame (copied); replaces one the worker has not taken yet."""
        self._raise_error()
        item = (frame.copy(), index, time.perf_counter())
        with self._cond:
            if self._pending is not None:
                self.replaced += 1
            self._pending = item
            self.submitted += 1
            self._cond.notify()

    def latest(self) -> ClassifyResult:
        self._raise_error()
        with self._cond:
            return self._result

    def _raise_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def _loop(self) -> None:
        self._tid = threading.get_native_id()
        self.lowered = lower_thread_priority(self.nice)
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stop)
                if self._stop:
                    return
                frame, index, t_frame = self._pending
                self._pending = None
            try:
                preds = self.classifier.classify(frame)
            except BaseException as e:  # raised on the submitter's thread
                self._error = e
                return
            infer_ms = float(sum(self.classifier.timing.values()))
            with self._cond:
                self._result = ClassifyResult(preds, index, t_frame, infer_ms)
                self.runs += 1
                if len(self._infer_ms) < 100_000:
                    self._infer_ms.append(infer_ms)

    def stats(self) -> dict[str, Any]:
        """What the worker did: frames handed over, replaced unread, classified, and its median time."""
        with self._cond:
            ms = list(self._infer_ms)
        return {"submitted": self.submitted, "replaced": self.replaced, "classified": self.runs,
                "classify_ms_p50": round(float(np.median(ms)), 2) if ms else None,
                "nice": self.nice if self.lowered else 0}

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after the classification in progress (if any)."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)
