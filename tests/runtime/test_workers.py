"""Frame-parallel inference workers (``--workers``): capture order kept, style changes reach every worker."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tiny_models as tm

from artcam.runtime.loading import load_model
from artcam.runtime.pipeline import FrameProcessor, Pipeline
from artcam.runtime.sinks import NullSink
from artcam.runtime.sources import Source, open_source
from artcam.runtime.tasks import Classifier, Stylizer
from artcam.runtime.workers import InOrder, auto_workers, keep_pair, probe


class Numbered(Source):
    """Frames whose first pixel is their index (mod 256), optionally paced and live."""

    def __init__(self, n, fps=None, live=False):
        super().__init__()
        self.n, self.fps, self.live, self.description = n, fps, live, "numbered"

    def __iter__(self):
        t0 = time.perf_counter()
        for i in range(self.n):
            if self.fps:
                time.sleep(max(0.0, t0 + i / self.fps - time.perf_counter()))
            yield np.full((4, 4, 3), i % 256, np.uint8), time.perf_counter()


class Recorder(NullSink):
    def __init__(self):
        super().__init__()
        self.frames, self.infos = [], []

    def write(self, frame, info):
        self.frames.append(frame.copy())
        self.infos.append(info)


class JitterLanes:
    """A processor with one lane per worker, each taking a random 0-8 ms a frame: results finish out of order."""

    def __init__(self, n):
        self.rng = random.Random(0)
        self._lanes = [self._lane() for _ in range(n)]

    def _lane(self):
        def lane(frame, index):
            time.sleep(self.rng.random() * 0.008)
            return frame, {"index": index}
        lane.timing = {}
        return lane

    def lanes(self):
        return self._lanes

    def __call__(self, frame):
        return self._lanes[0](frame, -1)


def test_in_order_holds_finite_results_and_drops_late_live_ones():
    class Rec:
        def __init__(self, i):
            self.index = i

    finite = InOrder(live=False)
    assert finite.push((None, None, Rec(1))) == [] and finite.held == 1
    assert [r.index for _, _, r in finite.push((None, None, Rec(0)))] == [0, 1]
    live = InOrder(live=True)
    assert [r.index for *_, r in live.push((None, None, Rec(3)))] == [3]
    assert live.push((None, None, Rec(2))) == [] and live.late == 1


def test_finite_source_with_workers_loses_nothing_in_order():
    sink = Recorder()
    stats = Pipeline(Numbered(300), JitterLanes(3), sink).run()
    assert [int(f[0, 0, 0]) for f in sink.frames] == [i % 256 for i in range(300)]
    assert [i["index"] for i in sink.infos] == list(range(300))
    assert stats.frames == stats.captured == 300 and stats.dropped == 0 and stats.to_dict()["workers"] == 3


def test_live_source_with_workers_never_shows_a_frame_out_of_order():
    sink = Recorder()
    stats = Pipeline(Numbered(200, fps=400, live=True), JitterLanes(2), sink).run()
    shown = [i["index"] for i in sink.infos]
    assert shown == sorted(set(shown)) and stats.frames == len(shown) > 20
    assert stats.frames + stats.dropped == stats.captured  # late frames count as dropped
    assert "2 inference workers" in stats.summary()


def test_an_error_in_one_worker_stops_the_run():
    class Boom(JitterLanes):
        def _lane(self):
            def lane(frame, index):
                if index == 7:
                    raise ValueError("model exploded")
                return frame, {}
            lane.timing = {}
            return lane

    for live in (False, True):
        t = time.perf_counter()
        with pytest.raises(ValueError, match="model exploded"):
            Pipeline(Numbered(10**6, fps=1000 if live else None, live=live), Boom(2), NullSink()).run()
        assert time.perf_counter() - t < 5


def test_a_worker_needs_a_lane():
    with pytest.raises(ValueError, match="lanes"):
        Pipeline(Numbered(3), lambda f: (f, {}), NullSink(), workers=2)


def photos(folder, n=24):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 256, (24 + 4 * (i % 3), 32, 3), np.uint8))
    return folder


def test_two_workers_write_the_same_frames_as_one(tmp_path):
    """A folder of images through real ONNX Runtime sessions, classified inline every 3rd frame: two workers give
    the frames and predictions one worker gives, frame by frame, in order."""
    s, c = tm.stylizer(tmp_path / "s.onnx", styles=("a", "b")), tm.classifier(tmp_path / "c.onnx")
    folder = photos(tmp_path / "in")

    def run(workers):
        stylizers = [Stylizer(load_model(s, device="cpu", threads=1), style="b", strength=0.7) for _ in range(workers)]
        proc = FrameProcessor(stylizers, Classifier(load_model(c, device="cpu")), every=3)
        sink = Recorder()
        try:
            stats = Pipeline(open_source(str(folder), live=False), proc, sink).run()
        finally:
            proc.close()
        preds = [[p.as_dict() for p in i["predictions"]] for i in sink.infos]
        return stats, sink, preds

    one, sink1, preds1 = run(1)
    two, sink2, preds2 = run(2)
    assert two.to_dict()["workers"] == 2 and two.frames == one.frames == 24
    assert [i["name"] for i in sink2.infos] == [f"{i:03d}.png" for i in range(24)]
    for a, b in zip(sink1.frames, sink2.frames):
        np.testing.assert_array_equal(a, b)
    assert preds1 == preds2 and [i["predictions_frames_ago"] for i in sink2.infos] == [i % 3 for i in range(24)]
    assert two.extra["classify"]["classified"] == 8


def test_a_style_change_reaches_every_worker_whole(tmp_path):
    """Asked for mid-run (as n/p keys and the web viewer do), a style and strength change reaches both workers'
    stylizers before their next frame; every frame is wholly before or wholly after it."""
    s = tm.stylizer(tmp_path / "s.onnx", styles=("a", "b"))
    stylizers = [Stylizer(load_model(s, device="cpu", threads=1), style="a") for _ in range(2)]
    proc = FrameProcessor(stylizers, None)
    frame = np.full((16, 16, 3), 100, np.uint8)
    before = stylizers[0].stylize(frame)
    stylizers[0].set_style("b")
    stylizers[0].strength = 0.5
    after = stylizers[0].stylize(frame)
    stylizers[0].set_style("a")
    stylizers[0].strength = 1.0
    assert not np.array_equal(before, after)

    class Same(Source):
        live, description = False, "same"

        def __iter__(self):
            for _ in range(60):
                yield frame, time.perf_counter()

    def on_frame(rec, info):
        if rec.index == 10:
            proc.request(style="b", strength=0.5)

    sink = Recorder()
    Pipeline(Same(), proc, sink, on_frame=on_frame).run()
    kinds = ["before" if np.array_equal(f, before) else "after" if np.array_equal(f, after) else "mixed"
             for f in sink.frames]
    assert "mixed" not in kinds and kinds[:11] == ["before"] * 11 and kinds[-20:] == ["after"] * 20
    assert [st.weights.tolist() for st in stylizers] == [[[0.0, 1.0]]] * 2
    assert [st.strength for st in stylizers] == [0.5, 0.5]
    proc.close()


def test_auto_picks_two_workers_only_for_hd_live_frames_on_the_cpu():
    hd, vga = (720, 1280), (480, 640)
    assert auto_workers(hd, live=True, local_cpu_stylizer=True, cpus=2) == 2
    assert auto_workers(vga, live=True, local_cpu_stylizer=True, cpus=2) == 1
    assert auto_workers(hd, live=False, local_cpu_stylizer=True, cpus=2) == 1
    assert auto_workers(hd, live=True, local_cpu_stylizer=False, cpus=2) == 1
    assert auto_workers(hd, live=True, local_cpu_stylizer=True, cpus=1) == 1


def test_the_probe_times_one_session_against_two(tmp_path):
    s = tm.stylizer(tmp_path / "s.onnx")
    single = Stylizer(load_model(s, device="cpu"))
    pair = [Stylizer(load_model(s, device="cpu", threads=1)) for _ in range(2)]
    ms = probe(single, pair, (96, 128), frames=4, rounds=2)
    assert set(ms) == {1, 2} and all(v > 0 for v in ms.values())
    assert keep_pair({1: 50.0, 2: 40.0}) and not keep_pair({1: 50.0, 2: 47.0})  # 25% more frames; 6% more
    for st in (single, *pair):
        st.close()


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "artcam.runtime.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ)


@pytest.mark.parametrize("verb", ["live", "demo"])
def test_bad_workers_values_exit_2_in_one_line(verb):
    for bad in ("0", "-1", "two", "1.5", "17"):
        r = cli(verb, "--workers", bad, "-o", "null", "--frames", "1")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
        assert "--workers" in r.stderr and "Traceback" not in r.stderr


def test_workers_in_the_json_summary(tmp_path):
    s, c = tm.stylizer(tmp_path / "s.onnx"), tm.classifier(tmp_path / "c.onnx")
    common = ["--source", "sample", "--source-size", "64x64", "--style-model", str(s), "-o", "null", "--frames", "12",
              "--json", "--device", "cpu"]
    r = cli("live", *common, "--style", "0", "--workers", "2", "--classify", str(c))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["workers"] == 2 and d["frames"] == 12 and d["classify"]["background"] is True
    r = cli("demo", "--frames", "12", "--source-size", "64x64", "--style-model", str(s), "--classify", "none",
            "-o", str(tmp_path / "d.mp4"), "--json", "--device", "cpu")  # auto at 64x64: one worker
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["workers"] == 1
    r = cli("live", *common, "--source-size", "720x1280")  # auto on a live HD source: the start-up probe decides
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    ms = {int(k): v for k, v in d["stylizer"]["workers_probe_ms"].items()}
    assert d["workers"] == (2 if keep_pair(ms) else 1) and "start-up probe at 1280x720" in r.stderr
    r = cli("live", "--source", "sample", "--classify", str(c), "--workers", "2", "-o", "null", "--frames", "1")
    assert r.returncode == 2 and "needs a stylizer" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("live", "--source", "sample", "--remote", "grpc://127.0.0.1:9", "--workers", "2", "-o", "null")
    assert r.returncode == 2 and "--workers does not apply with --remote" in r.stderr, r.stderr
