"""The live pipeline: capture, inference and output on separate threads with bounded queues.

Live sources use latest-frame-wins (a one-slot mailbox the capture thread overwrites), so a slow
model drops frames instead of building lag; finite sources block instead, so no frame is lost.
Every frame carries stage timestamps; the run ends with a summary of FPS, drops and latency.
Statistics live in fixed-size structures (counters, a reservoir sample per stage for percentiles,
the last few hundred frame records), so a ``live`` run keeps flat memory for days.
Inference runs on one worker thread, or on several (``workers``, see :mod:`artcam.runtime.workers`) when the
processor offers one lane per worker; their results go to the sink in capture order.
``FrameProcessor`` is the processor ``artcam live``/``demo``/``stylize`` and the pipeline benchmarks run:
stylize each frame and classify every Nth, inline or on a worker thread of its own (``classify_worker``).
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import sinks as _sinks
from .classify_worker import ClassifyBudget, ClassifyWorker
from .errors import InputError
from .percentiles import percentiles
from .sinks import Sink
from .source_rate import SourceRate
from .sources import Source
from .workers import AUTO, InOrder

if TYPE_CHECKING:
    from .tasks import Classifier, Stylizer

_END = object()


@dataclass
class FrameRecord:
    index: int
    t_capture: float
    t_start: float = 0.0  # the inference thread took the frame
    pre_ms: float = 0.0
    infer_ms: float = 0.0
    post_ms: float = 0.0
    t_processed: float = 0.0
    t_output: float = 0.0  # the sink finished with it
    name: str = ""  # file name for image sources, so folder outputs keep input names

    @property
    def queue_ms(self) -> float:
        return (self.t_start - self.t_capture) * 1e3

    @property
    def output_ms(self) -> float:
        return (self.t_output - self.t_processed) * 1e3

    @property
    def e2e_ms(self) -> float:
        return (self.t_output - self.t_capture) * 1e3


class Reservoir:
    """Count, mean, min and max of every value, and a uniform random sample of at most ``size`` of them
    (Vitter's algorithm R) for percentiles: exact up to ``size`` values, a fixed-memory estimate after."""

    __slots__ = ("size", "n", "total", "min", "max", "_buf", "_rng")

    def __init__(self, size: int = 8192, seed: int = 0):
        self.size = int(size)
        self.n = 0
        self.total = 0.0
        self.min, self.max = float("inf"), float("-inf")
        self._buf = np.empty(self.size, np.float64)  # allocated once: memory does not grow with the run
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        n = self.n
        self.n = n + 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if n < self.size:
            self._buf[n] = value
        else:
            j = self._rng.randrange(n + 1)
            if j < self.size:
                self._buf[j] = value

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    def values(self) -> np.ndarray:
        """The sample (every value so far while fewer than ``size``; arrival order until then)."""
        return self._buf[: min(self.n, self.size)]

    def __len__(self) -> int:
        return min(self.n, self.size)


STAGES = ("queue", "pre", "infer", "post", "output", "e2e")
KEEP_RECORDS = 512  # the last frame records, for callers that look at individual frames
RESERVOIR_SIZE = 8192


@dataclass
class PipelineStats:
    """What a run did. ``records`` holds only the most recent ``keep_records`` frames (None: all, for
    bounded benchmark runs); the latency percentiles come from fixed-size per-stage reservoirs."""

    frames: int = 0
    captured: int = 0
    dropped: int = 0
    skipped: int = 0
    wall_s: float = 0.0
    records: deque = field(default_factory=lambda: deque(maxlen=KEEP_RECORDS))
    source: str = ""
    sink: str = ""
    stopped_by: str = ""
    stages: dict[str, Reservoir] = field(default_factory=lambda: {k: Reservoir(RESERVOIR_SIZE, seed=i)
                                                                  for i, k in enumerate(STAGES)})
    health: Any = None  # the source's SourceHealth (reconnect.py) when it can stall; read live by anyone
    extra: dict[str, Any] = field(default_factory=dict)  # the processor's and source's own figures
    t_first_out: float = 0.0  # perf_counter times the first and the last frame left the sink
    t_last_out: float = 0.0

    @property
    def fps(self) -> float:
        """Output frames over the whole run's wall time: start-up (threads, the first frame's latency) and
        shutdown included, so short runs understate the rate the pipeline keeps."""
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def fps_steady(self) -> float:
        """The rate frames come out once the first is out: frame intervals over their sum. Dropped frames
        still lower it (they leave gaps); only the pipeline's fill and shutdown are left out."""
        span = self.t_last_out - self.t_first_out
        return (self.frames - 1) / span if self.frames > 1 and span > 0 else 0.0

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupted"

    def add(self, rec: FrameRecord) -> None:
        """Count one output frame: O(1) time and no memory growth."""
        self.records.append(rec)
        if not self.frames:
            self.t_first_out = rec.t_output
        self.t_last_out = rec.t_output
        self.frames += 1
        st = self.stages
        st["queue"].add(rec.queue_ms)
        st["pre"].add(rec.pre_ms)
        st["infer"].add(rec.infer_ms)
        st["post"].add(rec.post_ms)
        st["output"].add(rec.output_ms)
        st["e2e"].add(rec.e2e_ms)

    def stage_ms(self) -> dict[str, list[float]]:
        """Per-stage latency samples in ms: every frame's while the run has fewer than the reservoir
        size (8192), a uniform sample of that many after."""
        return {k: self.stages[k].values().tolist() for k in STAGES}

    def to_dict(self, ps=(50, 90, 99)) -> dict[str, Any]:
        return {
            "frames": self.frames, "captured": self.captured, "dropped": self.dropped, "skipped": self.skipped,
            "wall_s": round(self.wall_s, 3), "fps": round(self.fps, 2),
            "fps_steady": round(self.fps_steady, 2), "source": self.source, "sink": self.sink,
            "stopped_by": self.stopped_by,
            "latency_ms": {k: {n: round(v, 2) for n, v in percentiles(self.stages[k].values(), ps).items()}
                           for k in STAGES},
            **(self.health.as_dict() if self.health is not None else {}),
            **self.extra,
        }

    def summary(self) -> str:
        d = self.to_dict()
        e = d["latency_ms"]["e2e"]
        st = d["latency_ms"]
        lines = [
            f"frames {self.frames} (captured {self.captured}, dropped {self.dropped}"
            + (f", unreadable {self.skipped}" if self.skipped else "") + f") in {self.wall_s:.1f} s: {self.fps:.1f} FPS"
            + (f" ({self.fps_steady:.1f} after the first frame)" if self.frames > 1 else ""),
            f"end-to-end latency ms: p50 {e['p50']:.1f}  p90 {e['p90']:.1f}  p99 {e['p99']:.1f}",
            "stage medians ms: " + "  ".join(f"{k} {st[k]['p50']:.1f}" for k in ("queue", "pre", "infer", "post", "output")),
        ]
        if self.extra.get("workers", 1) > 1:
            lines.append(f"{self.extra['workers']} inference workers, frames taken in turn and output in capture order")
        c = self.extra.get("classify")
        if c and c.get("age_ms"):
            every = f"automatically (every {c['every_last']} at the end)" if c["every"] == AUTO \
                else f"every {c['every']} frame(s)"
            lines.append(f"classify {every}{' on its own thread' if c['background'] else ''}: "
                         f"{c['classified']} classified, result age ms p50 {c['age_ms']['p50']:.0f} "
                         f"p99 {c['age_ms']['p99']:.0f}")
        return "\n".join(lines)


class LatestSlot:
    """A one-item mailbox: put() replaces an unread item (counted as dropped)."""

    def __init__(self) -> None:
        self._item = None
        self._has = False
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item) -> None:
        with self._cond:
            if self._has and self._item is not _END:
                self.dropped += 1
            self._item, self._has = item, True
            self._cond.notify()

    def get(self, timeout: float | None = None):
        with self._cond:
            if not self._cond.wait_for(lambda: self._has, timeout=timeout):
                raise queue.Empty
            item, self._item, self._has = self._item, None, False
            return item


class Pipeline:
    """``processor(frame) -> (output frame, info for the HUD)``; it may expose ``timing`` (pre/infer/post
    in ms) for the per-stage statistics and ``handle(event)`` for sink events such as next style.

    ``workers``: inference threads (None: one per lane the processor offers, else 1). More than one needs
    ``processor.lanes()``: one callable per worker, ``lane(frame, index)``, each with its own ``timing``
    and its own model state, so that workers never share a model's buffers. Each worker takes whichever
    frame is next; results go to the sink in capture order (:class:`~artcam.runtime.workers.InOrder`).
    """

    def __init__(self, source: Source, processor: Callable, sink: Sink, *, live: bool | None = None,
                 queue_size: int = 2, on_frame: Callable[[FrameRecord, dict], None] | None = None,
                 keep_records: int | None = KEEP_RECORDS, workers: int | None = None):
        self.source, self.processor, self.sink = source, processor, sink
        lanes = processor.lanes() if callable(getattr(processor, "lanes", None)) else []
        if workers is None:
            workers = max(1, len(lanes))
        if workers < 1 or (workers > 1 and len(lanes) < workers):
            raise ValueError(f"{workers} workers need as many processor lanes (it offers {len(lanes)})")
        self.live = source.live if live is None else live
        if workers > 1 and self.live and getattr(processor, "needs_every_frame", False):
            raise ValueError("inline classification on several workers needs every frame: not a live source")
        self.workers = workers
        self._lanes = lanes[:workers] if workers > 1 else []
        self.queue_size = queue_size
        self.on_frame = on_frame
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._errors: list[BaseException] = []
        self.keep_records = keep_records
        self.stats: PipelineStats | None = None  # the running (then last) run's stats, for health checks
        self._rate: SourceRate | None = None  # live sources: the delivered frame rate
        self._slots: threading.Semaphore | None = None  # see run()

    def stop(self) -> None:
        self._stop.set()
        self._resume.set()

    # -- threads ---------------------------------------------------------------------------------
    def _capture(self, inbox) -> None:
        n = 0
        rate = self._rate
        try:
            for frame, t in self.source:
                if self._stop.is_set():
                    break
                if rate is not None:
                    rate.tick(t)
                cur = getattr(self.source, "current", None)
                rec = FrameRecord(n, t, name=cur.name if cur is not None else "")
                n += 1
                if self.live:
                    inbox.put((frame, rec))
                else:
                    while not self._stop.is_set():
                        try:
                            inbox.put((frame, rec), timeout=0.1)
                            break
                        except queue.Full:
                            continue
        except BaseException as e:  # surfaced in the main thread
            self._errors.append(e)
        finally:
            self.captured = n
            self._put_end(inbox)

    def _put_end(self, q) -> None:
        if isinstance(q, LatestSlot):
            q.put(_END)
            return
        while True:
            try:
                q.put(_END, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass

    def _take_slot(self) -> bool:
        """Several workers on a finite source: wait for room in the reorder buffer (False: stopping)."""
        if self._slots is None:
            return True
        while not self._stop.is_set():
            if self._slots.acquire(timeout=0.1):
                return True
        return False

    def _infer(self, inbox, outbox, lane: Callable | None = None) -> None:
        """One inference worker: ``lane(frame, index)`` when there are several, else ``processor(frame)``."""
        fn = lane or self.processor
        try:
            while not self._stop.is_set():
                self._resume.wait()
                if not self._take_slot():
                    break
                try:
                    item = inbox.get(timeout=0.1)
                except queue.Empty:
                    if self._slots is not None:
                        self._slots.release()
                    continue
                if item is _END:
                    if lane is not None:
                        self._put_end(inbox)  # for the other workers
                    break
                frame, rec = item
                rec.t_start = time.perf_counter()
                out, info = fn(frame, rec.index) if lane is not None else fn(frame)
                t = getattr(fn, "timing", None) or {}
                rec.pre_ms, rec.infer_ms, rec.post_ms = t.get("pre", 0.0), t.get("infer", 0.0), t.get("post", 0.0)
                rec.t_processed = time.perf_counter()
                while not self._stop.is_set():
                    try:
                        outbox.put((out, info, rec), timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as e:
            self._errors.append(e)
        finally:
            self._put_end(outbox)

    def _show_source_status(self, health, last_frame, last_info) -> None:
        """While a live source gives no frames, a sink that people watch (window, web viewer) gets the last
        frame again with the source's state for its HUD, twice a second; files get no made-up frames."""
        if not getattr(self.sink, "shows_status", False):
            return
        d = health.as_dict()
        if d["source_state"] != "ok":
            self.sink.write(last_frame.copy(), {**last_info, **d, "status_only": True})

    # -- main thread: output ---------------------------------------------------------------------
    def run(self, max_frames: int | None = None, duration_s: float | None = None) -> PipelineStats:
        inbox = LatestSlot() if self.live else queue.Queue(maxsize=self.queue_size)
        outbox: queue.Queue = queue.Queue(maxsize=self.queue_size + self.workers)
        order = InOrder(self.live)
        # a finite source with several workers: frames taken but not yet written stay bounded
        self._slots = threading.Semaphore(self.workers + self.queue_size) if self.workers > 1 and not self.live \
            else None
        self.captured = 0
        self._rate = SourceRate(getattr(self.source, "fps", None), getattr(self.source, "description", "") or "the source") \
            if self.live else None
        stats = PipelineStats(source=getattr(self.source, "description", ""), sink=getattr(self.sink, "description", ""),
                              records=deque(maxlen=self.keep_records), health=getattr(self.source, "health", None))
        self.stats = stats  # live: stats.to_dict() has source_state / stalled_since while it runs
        status_at = 0.0
        threads = [threading.Thread(target=self._capture, args=(inbox,), name="artcam-capture", daemon=True)]
        threads += [threading.Thread(target=self._infer, args=(inbox, outbox, lane), daemon=True,
                                     name=f"artcam-infer-{i}" if self._lanes else "artcam-infer")
                    for i, lane in enumerate(self._lanes or [None])]
        ends = 0  # workers finished
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        fps_ema, last_out = 0.0, None
        paused = False
        last_frame, last_info = None, {}
        stats.stopped_by = "end of source"
        try:
            while True:
                if duration_s is not None and time.perf_counter() - t0 >= duration_s:
                    stats.stopped_by = "duration"
                    break
                if paused:
                    ev = self.sink.write(last_frame.copy(), {**last_info, "paused": True}) if last_frame is not None else None
                    time.sleep(0.03)
                    if ev == _sinks.PAUSE:
                        paused = False
                        self._resume.set()
                    elif ev == _sinks.QUIT:
                        stats.stopped_by = "quit key"
                        break
                    continue
                try:
                    item = outbox.get(timeout=0.1)
                except queue.Empty:
                    if self._errors:
                        break
                    if stats.health is not None and last_frame is not None and time.perf_counter() - status_at > 0.5:
                        status_at = time.perf_counter()
                        self._show_source_status(stats.health, last_frame, last_info)
                    continue
                if item is _END:
                    ends += 1
                    if ends < len(threads) - 1 and not self._errors:  # other workers still busy
                        continue
                    break
                done = False
                for out, info, rec in order.push(item):
                    if self._slots is not None:
                        self._slots.release()
                    now = time.perf_counter()
                    if last_out is not None:
                        inst = 1.0 / max(now - last_out, 1e-6)
                        fps_ema = inst if fps_ema == 0 else 0.9 * fps_ema + 0.1 * inst
                    last_out = now
                    info = {**info, "fps": fps_ema, "latency_ms": (now - rec.t_capture) * 1e3,
                            "dropped": (inbox.dropped if isinstance(inbox, LatestSlot) else 0) + order.late}
                    if rec.name:
                        info["name"] = rec.name
                    event = self.sink.write(out, info)
                    rec.t_output = time.perf_counter()
                    stats.add(rec)
                    if self.on_frame is not None:
                        self.on_frame(rec, info)
                    last_frame, last_info = out, info
                    if event == _sinks.QUIT:
                        stats.stopped_by, done = "quit key", True
                        break
                    if event == _sinks.PAUSE:
                        paused = True
                        self._resume.clear()
                    elif event in (_sinks.NEXT_STYLE, _sinks.PREV_STYLE) and hasattr(self.processor, "handle"):
                        self.processor.handle(event)
                    if max_frames is not None and stats.frames >= max_frames:
                        stats.stopped_by, done = "frame limit", True
                        break
                if done:
                    break
        except KeyboardInterrupt:
            stats.stopped_by = "interrupted"
        finally:
            self.stop()
            for th in threads:
                th.join(timeout=5.0)
            stats.wall_s = time.perf_counter() - t0
            stats.captured = self.captured
            stats.dropped = (inbox.dropped if isinstance(inbox, LatestSlot) else 0) + order.late
            stats.extra["workers"] = self.workers
            if self.workers > 1 and self.live:
                stats.extra["dropped_late"] = order.late  # of ``dropped``: finished after a newer frame was shown
            stats.skipped = getattr(self.source, "skipped", 0)
            if self._rate is not None:
                stats.extra.update(self._rate.to_dict())
            run_stats = getattr(self.processor, "run_stats", None)
            if callable(run_stats):
                stats.extra.update(run_stats())
        if self._errors:
            raise self._errors[0]
        return stats


class _Lane:
    """One inference worker's view of a :class:`FrameProcessor`: its own stylizer and ``timing``."""

    def __init__(self, processor: FrameProcessor, stylizer):
        self.processor, self.stylizer = processor, stylizer
        self.generation = 0  # the processor's settings generation this lane's stylizer has
        self.timing = {"pre": 0.0, "infer": 0.0, "post": 0.0}

    def __call__(self, frame: np.ndarray, index: int | None = None):
        return self.processor._process(self, frame, index)


class FrameProcessor:
    """Stylize and/or classify one frame for the pipeline.

    Style and strength change while it runs (n/p keys, the web viewer's API) through ``request()``,
    from any thread: checked at once (an :class:`InputError` changes nothing) and applied by the
    inference thread before its next frame, so a frame never sees half a change and the model is
    never reloaded.

    The classifier sees every ``every``-th frame. ``background``: on a :class:`ClassifyWorker` thread
    (the newest frame; the stylizer never waits for it; for live sources), else inline (every
    classified frame waits for it; deterministic, for files). ``every="auto"`` (background only): as
    often as the stylizer's measured idle time allows (:class:`ClassifyBudget`). ``info`` carries the
    newest predictions and their age (``predictions_age_ms``, ``predictions_frames_ago``).

    ``stylizer`` may be a list, one local :class:`Stylizer` per inference worker (the same model and
    settings, each with its own session and buffers): :meth:`lanes` gives the pipeline one lane per
    worker, and a request reaches each lane's stylizer before that lane's next frame. The classifier stays
    one: in the background, one worker fed by every lane; inline, the lane holding every ``every``-th frame
    runs it (one at a time) and a frame in between waits for the predictions of the classified frame
    before it, so the output is the same as with one worker (it then needs every frame: a finite source).
    """

    def __init__(self, stylizer: Stylizer | list[Stylizer] | None, classifier: Classifier | None,
                 every: int | str = 1, background: bool = False):
        stylizers = list(stylizer) if isinstance(stylizer, (list, tuple)) else [stylizer]
        if not stylizers or (len(stylizers) > 1 and not all(hasattr(s, "style_weights") for s in stylizers)):
            raise InputError("several inference workers need a local stylizer each")
        self.stylizers, self.stylizer, self.classifier = stylizers, stylizers[0], classifier
        self._budget = None
        if every == AUTO:
            if not background:
                raise InputError("classify every 'auto' needs classification on its own thread (a live source)")
            self._budget, every = ClassifyBudget(workers=len(stylizers)), 1
        elif not isinstance(every, int) or every < 1:
            raise InputError(f"classify every {every!r} frames: it must be a whole number, at least 1, or auto")
        self.classify_every = int(every)
        self._since_submit: int | None = None  # frames since the worker was last offered one
        self._n = 0  # frames started, all lanes together
        self._ages = Reservoir(RESERVOIR_SIZE)
        self._worker = ClassifyWorker(classifier) if classifier is not None and background else None
        self._lock = threading.Lock()  # the settings and the shared classification state
        st = self.stylizer
        # the settings in force from the next frame on; replaced whole by request(), never changed in place
        self._wanted: dict[str, Any] = {"weights": None if st is None else getattr(st, "weights", None),
                                        "strength": None if st is None else getattr(st, "strength", None)}
        self._generation = 0
        self._inline: dict[int, tuple[list, float]] = {}  # inline: predictions by classified frame index
        self._inline_cond = threading.Condition()
        self._inline_failed: BaseException | None = None  # the error of a lane that failed to classify
        self._classify_lock = threading.Lock()  # inline: one classification at a time (one model, its buffers)
        for other in stylizers[1:]:  # every lane starts where the first is
            if other.weights is not None:
                other.weights[:] = st.weights
            other.strength = st.strength
        self._lanes = [_Lane(self, s) for s in stylizers]

    @property
    def workers(self) -> int:
        return len(self._lanes)

    @property
    def needs_every_frame(self) -> bool:
        """Inline classification on several lanes waits for frames by index: no live source (it drops)."""
        return self.classifier is not None and self._worker is None and len(self._lanes) > 1

    def lanes(self) -> list[_Lane]:
        """One callable per inference worker, ``lane(frame, index)``, each with its own stylizer."""
        return list(self._lanes)

    @property
    def timing(self) -> dict[str, float]:
        """The last frame's stage times (the first lane's)."""
        return self._lanes[0].timing

    def __call__(self, frame: np.ndarray):
        return self._process(self._lanes[0], frame, None)

    def _process(self, lane: _Lane, frame: np.ndarray, index: int | None):
        t_start = time.perf_counter()
        if lane.generation != self._generation:
            self._apply_settings(lane)
        timing = {"pre": 0.0, "infer": 0.0, "post": 0.0}
        info: dict[str, Any] = {}
        out = frame
        with self._lock:
            n = self._n
            self._n += 1
        if self._worker is not None:
            with self._lock:
                res = self._worker.latest()
                if self._budget is not None:
                    self._budget.frame_started(t_start)
                    self.classify_every = self._budget.every(res.infer_ms if res.frame_index >= 0 else None)
                if self._since_submit is None or self._since_submit >= self.classify_every:
                    self._worker.submit(frame, n)
                    self._since_submit = 0
                self._since_submit += 1
            preds, (at, t), ref = res.predictions, (res.frame_index, res.t_frame), n
        elif self.classifier is not None:
            ref = n if index is None else index
            preds, (at, t) = self._inline_predictions(frame, ref, timing)
        if self.classifier is not None:
            info["predictions"] = preds
            if at >= 0:
                age = (time.perf_counter() - t) * 1e3
                info["predictions_age_ms"], info["predictions_frames_ago"] = age, ref - at
                with self._lock:
                    self._ages.add(age)
        st = lane.stylizer
        if st is not None:
            out = st.stylize(frame)
            for k, v in st.timing.items():
                timing[k] += v
            info["style"] = st.style_name
        lane.timing = timing
        if self._budget is not None:
            with self._lock:
                self._budget.frame_done((time.perf_counter() - t_start) * 1e3)
        return out, info

    def _inline_predictions(self, frame: np.ndarray, index: int, timing: dict) -> tuple[list, tuple[int, float]]:
        """Frame ``index``'s predictions: its own when it is an ``every``-th frame, else those of the last
        one before it (waited for when another lane still has it)."""
        m = index - index % self.classify_every
        if m == index:
            try:
                with self._classify_lock:
                    preds = self.classifier.classify(frame)
                    for k, v in self.classifier.timing.items():
                        timing[k] += v
            except BaseException as e:
                with self._inline_cond:
                    self._inline_failed = e
                    self._inline_cond.notify_all()
                raise
            t = time.perf_counter()
            with self._inline_cond:
                self._inline[m] = (preds, t)
                while len(self._inline) > 4 * len(self._lanes) + 4:  # more than the frames in flight
                    del self._inline[min(self._inline)]
                self._inline_cond.notify_all()
            return preds, (m, t)
        with self._inline_cond:
            while m not in self._inline:
                if self._inline_failed is not None:  # the same error, whichever worker reports it first
                    raise self._inline_failed
                self._inline_cond.wait(0.1)
            preds, t = self._inline[m]
        return preds, (m, t)

    def _apply_settings(self, lane: _Lane) -> None:
        """Bring one lane's stylizer to the settings last requested, both at once, before its frame."""
        with self._lock:  # settings() never reads half-written weights
            wanted, lane.generation = self._wanted, self._generation
        st = lane.stylizer
        if wanted["weights"] is not None:
            st.weights[:] = wanted["weights"]
        if wanted["strength"] is not None:
            st.strength = wanted["strength"]

    def request(self, style=None, strength: float | None = None, prefix: str = "--") -> None:
        """Ask for a style (anything ``Stylizer.set_style`` takes) and/or a strength from the next frame on.

        Both are checked before anything changes: a bad value raises :class:`InputError` and leaves
        the current settings as they were. Messages name ``{prefix}style`` / ``{prefix}strength``.
        """
        if not self._steerable:
            raise InputError("this run has no stylizer that can be steered live",
                             "start `artcam live` with --style (a local model)")
        weights = self.stylizer.style_weights(style, f"{prefix}style") if style is not None else None
        value = self.stylizer.checked_strength(strength, f"{prefix}strength") if strength is not None else None
        with self._lock:
            wanted = dict(self._wanted)
            if weights is not None:
                wanted["weights"] = weights
            if value is not None:
                wanted["strength"] = value
            self._wanted = wanted
            self._generation += 1

    def settings(self) -> dict[str, Any]:
        """The style weights and strength in force from the next frame on (requests included)."""
        st = self.stylizer
        if not self._steerable:
            return {"styles": [], "weights": [], "strength": None}
        with self._lock:
            weights, strength = self._wanted["weights"], self._wanted["strength"]
            return {"styles": list(st.styles),
                    "weights": [] if weights is None else [float(x) for x in weights.reshape(-1)],
                    "strength": float(strength)}

    @property
    def _steerable(self) -> bool:
        """A local :class:`Stylizer` (a remote stand-in without ``style_weights`` steps its own styles)."""
        return self.stylizer is not None and hasattr(self.stylizer, "style_weights")

    def handle(self, event: str) -> None:
        if self.stylizer is None or event not in (_sinks.NEXT_STYLE, _sinks.PREV_STYLE):
            return
        delta = 1 if event == _sinks.NEXT_STYLE else -1
        if not self._steerable:
            self.stylizer.step_style(delta)
        elif self.stylizer.weights is not None:
            current = int(np.argmax(self.settings()["weights"]))
            self.request((current + delta) % len(self.stylizer.styles))

    def run_stats(self) -> dict[str, Any]:
        """For the run summary: how classification went (nothing without a classifier)."""
        if self.classifier is None:
            return {}
        d: dict[str, Any] = {"every": AUTO if self._budget is not None else self.classify_every,
                             "background": self._worker is not None}
        if self._budget is not None:
            d["every_last"] = self.classify_every  # what the budget gave at the end
        if self._worker is not None:
            d.update(self._worker.stats())
        else:
            d["classified"] = -(-self._n // self.classify_every)
        d["age_ms"] = ({k: round(v, 1) for k, v in percentiles(self._ages.values()).items()}
                       if len(self._ages) else None)
        return {"classify": d}

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
        for t in (*self.stylizers, self.classifier):
            if t is not None:
                t.close()
