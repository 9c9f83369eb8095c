"""Every source and sink on media the tests write themselves (real files, a real HTTP server)."""

from __future__ import annotations

import sys
import threading
import urllib.request

import cv2
import numpy as np
import pytest

from artcam.runtime import sinks as S
from artcam.runtime import sources
from artcam.runtime.errors import SinkError, SourceError
from artcam.runtime.fileio import read_image, write_image
from artcam.runtime.reconnect import parse_policy
from artcam.runtime.sources import SampleSource, open_source
from artcam.runtime.viewer import ViewerSink


def make_video(path, n=12, size=(48, 64), fps=10.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size[1], size[0]))
    assert w.isOpened()
    for i in range(n):
        f = np.full((*size, 3), i * 20 % 256, np.uint8)
        cv2.putText(f, str(i), (5, 30), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
        w.write(f)
    w.release()
    return path


def test_video_file_every_frame_and_loop(tmp_path):
    p = make_video(tmp_path / "clip.avi", n=12)
    src = open_source(str(p))
    frames = list(src)
    assert len(frames) == 12 and not src.live and src.fps == pytest.approx(10.0)
    assert frames[0][0].shape == (48, 64, 3)
    assert all(t1 <= t2 for (_, t1), (_, t2) in zip(frames, frames[1:]))
    looped = open_source(str(p), loop=True)
    it = iter(looped)
    assert len([next(it) for _ in range(30)]) == 30  # past the end: repeats
    looped.close()


def test_folder_glob_and_single_image(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"img{i}.png", np.full((20, 30, 3), i * 50, np.uint8))
    grey = np.full((20, 30), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    src = open_source(str(tmp_path))
    got = list(src)
    assert len(got) == 4 and src.skipped == 1  # unreadable skipped, counted, run continues
    assert all(f.shape == (20, 30, 3) for f, _ in got)  # greyscale converted
    assert len(list(open_source(str(tmp_path / "img*.png")))) == 3
    assert len(list(open_source(str(tmp_path / "img1.png")))) == 1
    with pytest.raises(SourceError, match="no images found"):
        open_source(str(tmp_path / "nothing*.png"))


def test_missing_sources_are_clear(tmp_path):
    with pytest.raises(SourceError, match="source not found"):
        open_source(str(tmp_path / "nope.mp4"))
    with pytest.raises(SourceError, match="camera /dev/video99 does not exist"):
        open_source("/dev/video99")
    with pytest.raises(SourceError) as e:
        open_source("57")
    assert "camera 57" in str(e.value) and "sample" in str(e.value)
    if "GStreamer: YES" not in " ".join(cv2.getBuildInformation().split()):
        with pytest.raises(SourceError, match="no GStreamer"):
            open_source("videotestsrc ! appsink")


class Feeder:
    """A real MJPEG-over-HTTP stream on loopback (our own sink), fed with frames of one grey value."""

    def __init__(self, value, port=0):
        self.sink = ViewerSink("127.0.0.1", port, hud=False)
        self.port, self.value = self.sink.port, value
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            self.sink.write(np.full((48, 64, 3), self.value, np.uint8), {})
            self.stop.wait(0.02)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sink.close()


def test_network_stream_reconnects_after_a_drop():
    first = Feeder(60)
    src = open_source(f"http://127.0.0.1:{first.port}/stream.mjpg", reconnect=parse_policy("backoff=0.2"))
    assert src.live
    seen, second = [], None
    try:
        for frame, _ in src:
            seen.append(int(frame.mean()))
            if len(seen) == 5:
                first.close()  # the camera goes away ...
                second = Feeder(200, port=first.port)  # ... and comes back on the same address
            if seen[-1] > 150:
                break
        assert src.reconnects >= 1
        assert abs(seen[0] - 60) < 5 and abs(seen[-1] - 200) < 5
    finally:
        src.close()
        if second is not None:
            second.close()


def test_video_file_over_http_ends_at_its_end(tmp_path):
    """A clip on a web server is a file, not a live stream: every frame once, then stop (no reconnect loop)."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    make_video(tmp_path / "clip.avi", n=9)
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        src = open_source(f"http://127.0.0.1:{server.server_address[1]}/clip.avi")
        assert not src.live
        assert len(list(src)) == 9 and src.reconnects == 0
    finally:
        server.shutdown()
        server.server_close()


def test_network_stream_gives_up_after_retries(monkeypatch):
    delays = []
    real_wait = sources.CaptureSource._wait
    monkeypatch.setattr(sources.CaptureSource, "_wait", lambda self, s: (delays.append(s), real_wait(self, 0.01))[1])
    feeder = Feeder(90)
    src = open_source(f"http://127.0.0.1:{feeder.port}/stream.mjpg")
    got = 0
    with pytest.raises(SourceError, match="5 reopen attempts failed"):
        for _ in src:
            got += 1
            if got == 3:
                feeder.close()
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]  # exponential backoff, capped


def test_sample_source_moves_and_falls_back(monkeypatch):
    s = SampleSource(size=(60, 80), fps=30, frames=5, live=False)
    frames = [f for f, _ in s]
    assert len(frames) == 5 and frames[0].shape == (60, 80, 3)
    assert np.abs(frames[0].astype(int) - frames[4]).mean() > 0.5  # the picture moves
    monkeypatch.setattr(sources, "sample_photos", lambda: [])
    g = SampleSource(size=(60, 80), frames=2, live=False)
    assert "generated" in g.description and len(list(g)) == 2


def test_sample_source_shows_one_photo_at_a_time_and_cross_fades():
    """No panorama of photos side by side (its seams looked like a broken camera): one photo per shot,
    and the change to the next is a cross-fade, never a cut (a cut changes a frame by ~80 levels)."""
    s = SampleSource(size=(60, 80), fps=10, live=False)
    n = int(2.5 * s.SHOT_S * s.fps)  # two changes of photo
    frames = [s.frame_at(i).astype(np.int16) for i in range(n)]
    steps = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    assert max(steps) < 30 and np.mean(steps) > 0.5  # it moves, smoothly
    if len(s.photos) > 1:
        first, later = frames[int(s.SHOT_S * s.fps) // 2], frames[int(1.5 * s.SHOT_S * s.fps)]
        assert np.abs(first - later).mean() > 20  # a new photo after the cross-fade


def test_video_sink_round_trip_and_atomic(tmp_path):
    out = tmp_path / "out.avi"
    sink = S.open_sink(str(out), fps=12)
    for i in range(7):
        sink.write(np.full((40, 56, 3), i * 30, np.uint8), {})
        assert not out.exists()  # still under a temporary name
    sink.close()
    assert [f for f, _ in open_source(str(out))].__len__() == 7
    assert list(tmp_path.glob(".*partial*")) == []


def test_mp4_sink(tmp_path):
    sink = S.open_sink(str(tmp_path / "o.mp4"))
    for i in range(5):
        sink.write(np.full((32, 48, 3), 100, np.uint8), {})
    sink.close()
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


def test_folder_and_image_sinks(tmp_path):
    sink = S.open_sink(str(tmp_path / "frames"))
    sink.write(np.zeros((10, 10, 3), np.uint8), {"name": "kodim01.png"})
    sink.write(np.zeros((10, 10, 3), np.uint8), {})
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["frame_000001.jpg", "kodim01.jpg"]
    one = S.open_sink(str(tmp_path / "one.png"), hud=True)
    one.write(np.zeros((50, 200, 3), np.uint8), {"fps": 30.0, "latency_ms": 12, "style": "wave"})
    assert not (tmp_path / "one.png").exists()  # published when the run completes
    one.close()
    assert read_image(tmp_path / "one.png").max() > 0  # the HUD drew text


def test_sink_errors(tmp_path):
    with pytest.raises(SinkError, match="unknown output type"):
        S.open_sink(str(tmp_path / "x.docx"))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not __import__("os").access(ro, __import__("os").W_OK):  # root can write anyway
            with pytest.raises(SinkError, match="not writable"):
                S.open_sink(str(ro / "out.mp4"))
    finally:
        ro.chmod(0o700)
    with pytest.raises(SinkError, match="cannot create output folder"):
        S.open_sink("/proc/artcam_cannot/out.mp4")


def test_window_without_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        ok, why = S.display_available()
        assert not ok and "DISPLAY" in why
        with pytest.raises(SinkError, match="cannot open a window"):
            S.WindowSink()


def test_mjpeg_http_stream(tmp_path):
    sink = S.open_sink("http://127.0.0.1:0")
    assert isinstance(sink, ViewerSink)  # the web viewer: tests/runtime/test_viewer*.py test the rest
    url = f"http://127.0.0.1:{sink.port}"
    stop = threading.Event()

    def feed():
        i = 0
        while not stop.is_set():
            sink.write(np.full((30, 40, 3), i % 255, np.uint8), {})
            i += 1
            stop.wait(0.02)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        snap = urllib.request.urlopen(url + "/snapshot.jpg", timeout=5).read()
        assert cv2.imdecode(np.frombuffer(snap, np.uint8), cv2.IMREAD_COLOR).shape == (30, 40, 3)
        with urllib.request.urlopen(url + "/stream.mjpg", timeout=5) as r:
            assert "multipart/x-mixed-replace" in r.headers["Content-Type"]
            chunk = r.read(4096)
        assert chunk.count(b"--frame") >= 1 and b"image/jpeg" in chunk
        assert b"stream.mjpg" in urllib.request.urlopen(url + "/", timeout=5).read()
    finally:
        stop.set()
        t.join()
        sink.close()
