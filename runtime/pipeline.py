"""The live pipeline: capture, inference and output on separate threads with bounded queues.

Live sources use latest-frame-wins (a one-slot mailbox the capture thread overwrites), so a slow
model drops frames instead of building lag; finite sources block instead, so no frame is lost.
Every frame carries stage timestamps; the run ends with a summary of FPS, drops and latency.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import sinks as _sinks
from .sinks import Sink
from .sources import Source

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


def percentiles(values, ps=(50, 90, 99)) -> dict[str, float]:
    if len(values) == 0:
        return {f"p{p}": float("nan") for p in ps}
    arr = np.asarray(values, np.float64)
    return {f"p{p}": float(np.percentile(arr, p)) for p in ps}


@dataclass
class PipelineStats:
    frames: int = 0
    captured: int = 0
    dropped: int = 0
    skipped: int = 0
    wall_s: float = 0.0
    records: list[FrameRecord] = field(default_factory=list)
    source: str = ""
    sink: str = ""
    stopped_by: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def stage_ms(self) -> dict[str, list[float]]:
        r = self.records
        return {
            "queue": [x.queue_ms for x in r],
            "pre": [x.pre_ms for x in r],
            "infer": [x.infer_ms for x in r],
            "post": [x.post_ms for x in r],
            "output": [x.output_ms for x in r],
            "e2e": [x.e2e_ms for x in r],
        }

    def to_dict(self, ps=(50, 90, 99)) -> dict[str, Any]:
        return {
            "frames": self.frames, "captured": self.captured, "dropped": self.dropped, "skipped": self.skipped,
            "wall_s": round(self.wall_s, 3), "fps": round(self.fps, 2), "source": self.source, "sink": self.sink,
            "stopped_by": self.stopped_by,
            "latency_ms": {k: {n: round(v, 2) for n, v in percentiles(vals, ps).items()}
                           for k, vals in self.stage_ms().items()},
        }

    def summary(self) -> str:
        d = self.to_dict()
        e = d["latency_ms"]["e2e"]
        st = d["latency_ms"]
        lines = [
            f"frames {self.frames} (captured {self.captured}, dropped {self.dropped}"
            + (f", unreadable {self.skipped}" if self.skipped else "") + f") in {self.wall_s:.1f} s: {self.fps:.1f} FPS",
            f"end-to-end latency ms: p50 {e['p50']:.1f}  p90 {e['p90']:.1f}  p99 {e['p99']:.1f}",
            "stage medians ms: " + "  ".join(f"{k} {st[k]['p50']:.1f}" for k in ("queue", "pre", "infer", "post", "output")),
        ]
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
    in ms) for the per-stage statistics and ``handle(event)`` for sink events such as next style."""

    def __init__(self, source: Source, processor: Callable, sink: Sink, *, live: bool | None = None,
                 queue_size: int = 2, on_frame: Callable[[FrameRecord, dict], None] | None = None):
        self.source, self.processor, self.sink = source, processor, sink
        self.live = source.live if live is None else live
        self.queue_size = queue_size
        self.on_frame = on_frame
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._errors: list[BaseException] = []

    def stop(self) -> None:
        self._stop.set()
        self._resume.set()

    # -- threads ---------------------------------------------------------------------------------
    def _capture(self, inbox) -> None:
        n = 0
        try:
            for frame, t in self.source:
                if self._stop.is_set():
                    break
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

    def _infer(self, inbox, outbox) -> None:
        try:
            while not self._stop.is_set():
                self._resume.wait()
                try:
                    item = inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _END:
                    break
                frame, rec = item
                rec.t_start = time.perf_counter()
                out, info = self.processor(frame)
                t = getattr(self.processor, "timing", None) or {}
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

    # -- main thread: output ---------------------------------------------------------------------
    def run(self, max_frames: int | None = None, duration_s: float | None = None) -> PipelineStats:
        inbox = LatestSlot() if self.live else queue.Queue(maxsize=self.queue_size)
        outbox: queue.Queue = queue.Queue(maxsize=self.queue_size)
        self.captured = 0
        stats = PipelineStats(source=getattr(self.source, "description", ""), sink=getattr(self.sink, "description", ""))
        threads = [
            threading.Thread(target=self._capture, args=(inbox,), name="artcam-capture", daemon=True),
            threading.Thread(target=self._infer, args=(inbox, outbox), name="artcam-infer", daemon=True),
        ]
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
                    continue
                if item is _END:
                    break
                out, info, rec = item
                now = time.perf_counter()
                if last_out is not None:
                    inst = 1.0 / max(now - last_out, 1e-6)
                    fps_ema = inst if fps_ema == 0 else 0.9 * fps_ema + 0.1 * inst
                last_out = now
                info = {**info, "fps": fps_ema, "latency_ms": (now - rec.t_capture) * 1e3}
                if rec.name:
                    info["name"] = rec.name
                event = self.sink.write(out, info)
                rec.t_output = time.perf_counter()
                stats.records.append(rec)
                stats.frames += 1
                if self.on_frame is not None:
                    self.on_frame(rec, info)
                last_frame, last_info = out, info
                if event == _sinks.QUIT:
                    stats.stopped_by = "quit key"
                    break
                if event == _sinks.PAUSE:
                    paused = True
                    self._resume.clear()
                elif event in (_sinks.NEXT_STYLE, _sinks.PREV_STYLE) and hasattr(self.processor, "handle"):
                    self.processor.handle(event)
                if max_frames is not None and stats.frames >= max_frames:
                    stats.stopped_by = "frame limit"
                    break
        except KeyboardInterrupt:
            stats.stopped_by = "interrupted"
        finally:
            self.stop()
            for th in threads:
                th.join(timeout=5.0)
            stats.wall_s = time.perf_counter() - t0
            stats.captured = self.captured
            stats.dropped = inbox.dropped if isinstance(inbox, LatestSlot) else 0
            stats.skipped = getattr(self.source, "skipped", 0)
        if self._errors:
            raise self._errors[0]
        return stats
