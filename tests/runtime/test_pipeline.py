"""The threaded pipeline: no frame lost on finite sources, bounded lag on live ones."""

from __future__ import annotations

import time

import numpy as np
import pytest

from artcam.runtime.pipeline import FrameRecord, LatestSlot, Pipeline, PipelineStats
from artcam.runtime.sinks import NullSink
from artcam.runtime.sources import Source


class CountingSource(Source):
    def __init__(self, n, fps=None, live=False):
        super().__init__()
        self.n, self.fps, self.live = n, fps, live
        self.description = "counting"

    def __iter__(self):
        t0 = time.perf_counter()
        for i in range(self.n):
            if self.fps:
                delay = t0 + i / self.fps - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            yield np.full((4, 4, 3), i % 256, np.uint8), time.perf_counter()


class Recorder(NullSink):
    def __init__(self):
        super().__init__()
        self.values = []

    def write(self, frame, info):
        self.values.append(int(frame[0, 0, 0]))
        return None


class SlowProcessor:
    def __init__(self, seconds):
        self.seconds = seconds
        self.timing = {}

    def __call__(self, frame):
        time.sleep(self.seconds)
        self.timing = {"pre": 0.0, "infer": self.seconds * 1e3, "post": 0.0}
        return frame, {}


def test_finite_source_loses_nothing_in_order():
    sink = Recorder()
    stats = Pipeline(CountingSource(200), SlowProcessor(0.0), sink).run()
    assert sink.values == [i % 256 for i in range(200)]
    assert stats.frames == stats.captured == 200 and stats.dropped == 0
    assert stats.stopped_by == "end of source"


def test_live_source_with_slow_model_keeps_lag_bounded():
    # 100 FPS camera, 25 ms model: latest-frame-wins must drop frames instead of queueing them
    src = CountingSource(150, fps=100, live=True)
    stats = Pipeline(src, SlowProcessor(0.025), Recorder()).run()
    lat = [r.e2e_ms for r in stats.records]
    assert stats.dropped > 50
    assert stats.frames + stats.dropped <= stats.captured
    # lag does not build up: late frames are as fresh as early ones (no growing queue)
    assert np.median(lat[-10:]) < 4 * 25 + 40
    assert np.median(lat[-10:]) < np.median(lat[:10]) + 40


def test_limits_and_summary():
    stats = Pipeline(CountingSource(1000), SlowProcessor(0.0), NullSink()).run(max_frames=25)
    assert stats.frames == 25 and stats.stopped_by == "frame limit"
    d = stats.to_dict()
    assert set(d["latency_ms"]) == {"queue", "pre", "infer", "post", "output", "e2e"}
    assert "FPS" in stats.summary() and "p99" in stats.summary()
    t = time.perf_counter()
    Pipeline(CountingSource(10**6, fps=200, live=True), SlowProcessor(0.0), NullSink()).run(duration_s=0.3)
    assert time.perf_counter() - t < 3


def test_errors_in_threads_surface():
    class Boom:
        timing = {}

        def __call__(self, frame):
            raise ValueError("model exploded")

    with pytest.raises(ValueError, match="model exploded"):
        Pipeline(CountingSource(10), Boom(), NullSink()).run()

    class BadSource(CountingSource):
        def __iter__(self):
            yield np.zeros((4, 4, 3), np.uint8), time.perf_counter()
            raise OSError("camera unplugged")

    with pytest.raises(OSError, match="unplugged"):
        Pipeline(BadSource(5), SlowProcessor(0.0), NullSink()).run()


def test_latest_slot_counts_drops():
    s = LatestSlot()
    for i in range(5):
        s.put(i)
    assert s.get() == 4 and s.dropped == 4


def test_frame_processor_applies_requests_at_the_next_frame(tmp_path):
    """Style and strength requests (the web viewer's API, n/p keys) are checked at once and applied
    between frames, never in the middle of one; a bad one changes nothing."""
    import tiny_models as tm

    from artcam.runtime.errors import InputError
    from artcam.runtime.loading import load_model
    from artcam.runtime.pipeline import FrameProcessor
    from artcam.runtime.sinks import NEXT_STYLE, PREV_STYLE
    from artcam.runtime.tasks import Stylizer

    st = Stylizer(load_model(tm.stylizer(tmp_path / "s.onnx", styles=("a", "b", "c")), device="cpu"))
    proc = FrameProcessor(st, None)
    frame = np.full((16, 16, 3), 128, np.uint8)
    proc.request(style="c", strength=0.5)
    assert proc.settings() == {"styles": ["a", "b", "c"], "weights": [0.0, 0.0, 1.0], "strength": 0.5}
    assert st.weights.tolist() == [[1.0, 0.0, 0.0]] and st.strength == 1.0  # not yet: between frames only
    _, info = proc(frame)
    assert info["style"] == "c" and st.strength == 0.5
    for bad in ({"style": "nope"}, {"style": [0, 0, 0]}, {"strength": float("nan")}, {"style": "a", "strength": 2}):
        with pytest.raises(InputError):
            proc.request(**bad)
    assert proc.settings()["weights"] == [0.0, 0.0, 1.0] and proc.settings()["strength"] == 0.5
    proc.handle(NEXT_STYLE)
    assert proc.settings()["weights"] == [1.0, 0.0, 0.0]  # wraps around
    proc.handle(PREV_STYLE)
    proc.handle(PREV_STYLE)
    assert proc(frame)[1]["style"] == "b"
    proc.close()


def test_fps_steady_leaves_out_fill_and_shutdown_but_not_gaps():
    """fps counts the whole run; fps_steady the frames after the first is out. A dropped frame's gap
    still lowers fps_steady."""
    st = PipelineStats()
    outs = [0.3 + i / 30 for i in range(30)]  # 0.3 s of start-up, then a frame every 1/30 s
    outs[10:] = [t + 1 / 30 for t in outs[10:]]  # one frame dropped: a double gap
    for i, t in enumerate(outs):
        st.add(FrameRecord(i, t_capture=t - 0.02, t_start=t - 0.015, t_processed=t - 0.005, t_output=t))
    st.wall_s = outs[-1] + 0.05  # and 50 ms of shutdown
    d = st.to_dict()
    assert d["fps"] == round(30 / st.wall_s, 2) and d["fps_steady"] == round(29 / (outs[-1] - outs[0]), 2)
    assert d["fps"] < d["fps_steady"] < 30.0
    assert "after the first frame" in st.summary()
