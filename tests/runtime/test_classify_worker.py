"""Classification off the stylizer's critical path, its reported age, and sources slower than promised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.runtime.classify_worker import AUTO_MAX_EVERY, WORKER_NICE, ClassifyBudget
from artcam.runtime.loading import load_model
from artcam.runtime.pipeline import FrameProcessor, Pipeline
from artcam.runtime.sinks import NullSink
from artcam.runtime.source_rate import SourceRate
from artcam.runtime.sources import SampleSource, Source
from artcam.runtime.tasks import Classifier, Stylizer

SLOW_S = 0.2


class SlowClassifier(Classifier):
    """A real ONNX Runtime classifier whose every call also sleeps ``SLOW_S``: a classifier far slower
    than the stylizer, as a big model on a small CPU is."""

    def classify(self, frame):
        time.sleep(SLOW_S)
        return super().classify(frame)


class InfoSink(NullSink):
    def __init__(self):
        super().__init__()
        self.infos = []

    def write(self, frame, info):
        self.infos.append(dict(info))
        return None


@pytest.fixture
def models(tmp_path):
    st = Stylizer(load_model(tm.stylizer(tmp_path / "s.onnx"), device="cpu"))
    cl = SlowClassifier(load_model(tm.classifier(tmp_path / "c.onnx"), device="cpu"))
    st.warmup((64, 64))
    cl.warmup()
    yield st, cl
    st.close()
    cl.close()


def _run(st, cl, every, background, frames=24):
    proc = FrameProcessor(st, cl, every=every, background=background)
    sink = InfoSink()
    slowest = []

    def on_frame(rec, info):
        slowest.append(rec.t_processed - rec.t_start)

    src = SampleSource(size=(64, 64), frames=frames, live=False)  # finite: every frame, no pacing
    t0 = time.perf_counter()
    stats = Pipeline(src, proc, sink, on_frame=on_frame).run()
    wall = time.perf_counter() - t0
    proc._worker and proc._worker.close()
    return stats, sink.infos, wall, max(slowest)


def test_slow_classifier_does_not_block_the_stylizer(models):
    st, cl = models
    stats, infos, wall, slowest = _run(st, cl, every=1, background=True)
    assert stats.frames == 24
    # inline, 24 classifications would take 24 x 0.2 s; on its own thread no frame waits for one
    assert slowest < SLOW_S / 2, f"a frame took {slowest * 1e3:.0f} ms: it waited for the classifier"
    assert wall < 24 * SLOW_S / 3
    c = stats.to_dict()["classify"]
    assert c["background"] and c["submitted"] == 24 and c["classified"] < 24
    # the contrast: inline classification every 8th frame stalls those frames for the whole call
    _, _, _, slowest_inline = _run(st, cl, every=8, background=False)
    assert slowest_inline >= SLOW_S


def test_predictions_carry_their_age(models):
    st, cl = models
    proc = FrameProcessor(st, cl, every=1, background=True)
    frame = np.full((64, 64, 3), 90, np.uint8)
    _, info = proc(frame)
    assert info["predictions"] == [] and "predictions_age_ms" not in info  # nothing classified yet
    deadline = time.perf_counter() + 5
    while "predictions_age_ms" not in info and time.perf_counter() < deadline:
        time.sleep(0.02)
        _, info = proc(frame)
    assert [p.head for p in info["predictions"]] == ["objects", "style"]
    inline = Classifier(cl.model).classify(frame)  # the same session, no sleep: the same answer
    assert [p.labels for p in info["predictions"]] == [p.labels for p in inline]
    assert info["predictions_age_ms"] >= SLOW_S * 1e3 and info["predictions_frames_ago"] >= 1
    proc._worker.close()  # no newer result can arrive: the same predictions only get older
    _, info = proc(frame)
    first = info["predictions_age_ms"]
    time.sleep(0.05)
    _, info = proc(frame)
    assert info["predictions_age_ms"] > first + 40
    summary = proc.run_stats()["classify"]
    assert summary["age_ms"]["p50"] > 0 and summary["classify_ms_p50"] >= 0


def test_classifier_error_surfaces_in_the_pipeline(models):
    st, cl = models

    class Broken(SlowClassifier):
        def classify(self, frame):
            raise RuntimeError("classifier exploded")

    proc = FrameProcessor(st, Broken(cl.model), every=1, background=True)
    with pytest.raises(RuntimeError, match="classifier exploded"):
        Pipeline(SampleSource(size=(64, 64), frames=200, live=False), proc, NullSink()).run()
    proc._worker.close()


def test_bad_every_is_refused(models):
    st, cl = models
    from artcam.runtime.errors import InputError

    for every in (0, -1, "junk", 2.5):
        with pytest.raises(InputError):
            FrameProcessor(st, cl, every=every, background=True)
    with pytest.raises(InputError, match="own thread"):
        FrameProcessor(st, cl, every="auto", background=False)


class SlowCamera(Source):
    """Promises 30 FPS, delivers 10: frames it never sends are not drops."""

    fps = 30.0
    live = True
    description = "camera test"

    def __iter__(self):
        while True:
            time.sleep(0.1)
            yield np.zeros((32, 32, 3), np.uint8), time.perf_counter()


@pytest.mark.slow
def test_a_camera_slower_than_promised_is_said_once_and_not_dropped(capsys):
    stats = Pipeline(SlowCamera(), lambda f: (f, {}), NullSink()).run(duration_s=3.6)
    err = capsys.readouterr().err
    assert err.count("delivers") == 1 and "not the 30 asked" in err
    d = stats.to_dict()
    assert d["dropped"] == 0 and d["source_slow"] and 7 < d["source_fps"] < 11


def test_source_rate_quiet_when_the_promise_is_kept():
    said = []
    r = SourceRate(30.0, "cam", said.append)
    for i in range(200):
        r.tick(i / 30.0)
    assert said == [] and abs(r.to_dict()["source_fps"] - 30.0) < 0.5


def test_live_cli_reports_classification_age(tmp_path):
    s, c = tm.stylizer(tmp_path / "s.onnx"), tm.classifier(tmp_path / "c.onnx")
    r = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--source-size",
                        "64x64", "--style", str(s), "--classify", str(c), "-o", "null", "--frames", "40",
                        "--json", "--device", "cpu"], capture_output=True, text=True, timeout=120, env=os.environ)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    c = d["classify"]
    # a live source with a stylizer: auto, from the stylizer's measured idle time
    assert c["every"] == "auto" and 1 <= c["every_last"] <= AUTO_MAX_EVERY and c["background"]
    assert c["classified"] >= 1 and c["age_ms"]["p50"] >= 0
    assert c["nice"] == (WORKER_NICE if sys.platform.startswith("linux") else c["nice"])
    assert d["fps_steady"] > 0 and d["stylizer"] == {"model": "s.onnx"}  # the tiny model has no INT8 twin
    for bad_every in ("0", "-2", "junk", "1.5"):
        bad = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "live", "--classify-every", bad_every],
                             capture_output=True, text=True, timeout=60, env=os.environ)
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert "--classify-every" in bad.stderr and "auto" in bad.stderr


def test_classify_every_auto_needs_a_live_source(tmp_path):
    """A file is classified inline (deterministic); auto has no frame interval to budget against there."""
    s, c = tm.stylizer(tmp_path / "s.onnx"), tm.classifier(tmp_path / "c.onnx")
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.full((32, 32, 3), 100, np.uint8))
    r = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "live", "--source", str(img), "--style", str(s),
                        "--classify", str(c), "--classify-every", "auto", "-o", "null", "--device", "cpu"],
                       capture_output=True, text=True, timeout=120, env=os.environ)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "live source" in r.stderr, r.stderr


def test_budget_classifies_as_often_as_the_idle_time_allows():
    b = ClassifyBudget(max_every=30, alpha=1.0)  # alpha 1: the latest measurement, for exact arithmetic
    assert b.every(10.0) == 1  # nothing measured yet: the first label comes at once
    for i in range(3):  # a 30 FPS camera; the stylizer busy 28 ms of each 33.3 ms frame
        b.frame_started(i / 30)
        b.frame_done(28.0)
    assert b.every(None) == 1
    assert b.every(10.0) == 2  # 5.3 ms idle a frame: a 10 ms classification fits every 2nd frame
    assert b.every(26.0) == 5
    b.frame_done(40.0)  # busier than the frame interval: no idle time, the least often allowed
    assert b.every(10.0) == 30
    b.frame_done(1.0)
    assert b.every(10.0) == 1


def test_auto_offers_frames_by_the_budget_and_every_n_exactly(models):
    st, cl = models
    auto = FrameProcessor(st, cl, every="auto", background=True)
    frame = np.full((64, 64, 3), 90, np.uint8)
    deadline = time.perf_counter() + 10
    _, info = auto(frame)  # until the first result, every frame is offered (each replaces the last unread)
    while "predictions_age_ms" not in info and time.perf_counter() < deadline:
        _, info = auto(frame)
    before = auto.run_stats()["classify"]["submitted"]
    for _ in range(20):  # frames back to back: the stylizer is never idle, so at most one more offer
        auto(frame)
    auto._worker.close()
    c = auto.run_stats()["classify"]
    assert c["every"] == "auto" and c["every_last"] == AUTO_MAX_EVERY
    assert c["submitted"] - before <= 1
    fixed = FrameProcessor(st, cl, every=4, background=True)
    for _ in range(10):
        fixed(frame)
    fixed._worker.close()
    assert fixed.run_stats()["classify"]["submitted"] == 3  # frames 0, 4, 8


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_worker_thread_runs_at_lower_priority(models):
    st, cl = models
    proc = FrameProcessor(st, cl, every=1, background=True)
    proc(np.full((64, 64, 3), 90, np.uint8))
    w = proc._worker
    deadline = time.perf_counter() + 5
    while w._tid is None and time.perf_counter() < deadline:
        time.sleep(0.01)
    assert os.getpriority(os.PRIO_PROCESS, w._tid) == os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICE
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == os.getpriority(os.PRIO_PROCESS, 0)
    w.close()
    assert w.stats()["nice"] == WORKER_NICE
