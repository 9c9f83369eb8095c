"""Frame sources behind one iterator of ``(frame, capture_time)``.

``frame`` is BGR uint8; ``capture_time`` is ``time.perf_counter()`` when the frame was grabbed, so
the pipeline can measure capture-to-output latency. ``live`` sources (cameras, streams, ``sample``)
keep running at their own rate and the pipeline drops stale frames; files give every frame.
"""

from __future__ import annotations

import glob as _glob
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .errors import InputError, SourceError
from .fileio import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, read_image
from .reconnect import DEFAULT_POLICY, ReconnectPolicy, SourceHealth

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


class Source:
    live = False
    fps: float | None = None
    description = "source"

    def __init__(self) -> None:
        self.skipped = 0  # unreadable items (images in a folder)
        self.reconnects = 0
        self.health: SourceHealth | None = None  # sources that can stall and come back (reconnect.py)

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def camera_hint() -> str:
    cams = sorted(_glob.glob("/dev/video*"))
    have = f"cameras present: {', '.join(cams)}" if cams else "no /dev/video* devices on this machine"
    return f"{have}; try another index, or --source sample for a camera stand-in"


def _warn(msg: str) -> None:
    print(f"artcam: {msg}", file=sys.stderr)


# --- cameras, files and streams through cv2.VideoCapture --------------------------------------


class CaptureSource(Source):
    """cv2.VideoCapture over a camera, a video file, a network stream or a GStreamer pipeline."""

    def __init__(self, target, backends: list[tuple[int, str]], *, live: bool, loop: bool = False,
                 description: str = "", reconnect: bool = False, size=None, policy: ReconnectPolicy | None = None,
                 what: str = "stream"):
        super().__init__()
        self.target, self.backends, self.live, self.loop = target, backends, live, loop
        self.reconnect, self.policy = reconnect, policy or DEFAULT_POLICY
        self.description = description or str(target)
        self.size = size
        self._closed = threading.Event()  # close() ends a reconnect wait at once
        if reconnect:  # what: "camera" or "stream", the words of the HUD and of the health (camera / stalled)
            self.health = SourceHealth(what, give_up_s=self.policy.worst_case_s())
        self.cap = self._open()
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frames_read = 0
        self.ended_early = False  # a file that ended before its declared frame count (truncated)

    def _open(self) -> cv2.VideoCapture:
        tried = []
        for api, api_name in self.backends:
            if self.reconnect and api == cv2.CAP_FFMPEG:  # a silent stream is noticed in stall_s, not FFmpeg's 30 s
                ms = int(self.policy.stall_s * 1000)
                cap = cv2.VideoCapture(self.target, api, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                          cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
            else:
                cap = cv2.VideoCapture(self.target, api)
            if cap.isOpened():
                if self.size:
                    cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[1])
                    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[0])
                return cap
            cap.release()
            tried.append(f"{self.target} via {api_name}")
        raise SourceError(f"cannot open {self.description} (tried: {'; '.join(tried)})", self._hint())

    def _hint(self) -> str:
        if isinstance(self.target, int) or str(self.target).startswith("/dev/video"):
            return camera_hint()
        if str(self.target).startswith(STREAM_PREFIXES):
            return "check the URL and that the stream is up"
        return "check the path and that OpenCV can decode this format"

    def _check_complete(self) -> None:
        """At the end of a file: say so in one line when it ended before its declared frame count."""
        declared, got = self.frame_count, self.frames_read
        if self.ended_early or self.live or self.reconnect or declared <= 0 or got >= declared:
            return
        if declared - got <= max(1, declared // 100):  # containers often declare an estimate
            return
        self.ended_early = True
        _warn(f"{self.description} ended after {got} of its {declared} declared frames "
              "(the file is truncated or damaged); the output has the frames that could be read")

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        while True:
            ok, frame = self.cap.read()
            t = time.perf_counter()
            if ok and frame is not None:
                if self.health is not None:
                    self.health.frame()
                self.frames_read += 1
                if frame.ndim == 2 or frame.shape[2] != 3:
                    frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR if frame.ndim == 2 else cv2.COLOR_BGRA2BGR)
                yield frame, t
                continue
            if self.loop and not self.reconnect:
                if self.frames_read and self.frames_read <= self.frame_count:
                    self._check_complete()
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self.cap.read()
                if not ok:
                    return
                yield frame, time.perf_counter()
                continue
            if not self.reconnect:
                self._check_complete()
                return
            if self._closed.is_set() or not self._reopen():
                return

    def _reopen(self) -> bool:
        """The source stopped giving frames (a read failed or timed out after ``policy.stall_s``): reopen
        it under the policy (True), or raise :class:`SourceError` once its attempts are spent; False when
        :meth:`close` came first."""
        pol, health = self.policy, self.health
        health.stalled()
        what = health.what
        for attempt in range(1, pol.attempts + 1):
            delay = pol.delay(attempt)
            health.reconnecting(attempt, pol.attempts)
            _warn(f"{self.description}: no frames for {health.no_frames_s():.1f} s; reopening the {what} "
                  f"in {delay:.1f} s ({attempt}/{pol.attempts})")
            if self._wait(delay):
                return False
            self.cap.release()
            try:
                self.cap = self._open()
            except SourceError:
                continue
            self.reconnects += 1
            return True
        health.lost()
        raise SourceError(f"{self.description}: no frames for {health.no_frames_s():.0f} s; "
                          f"{pol.attempts} reopen attempts failed",
                          f"check the {what}; --reconnect stall=S,attempts=N,backoff=B sets how long to wait")

    def _wait(self, seconds: float) -> bool:
        """Sleep between attempts; True at once when :meth:`close` is called meanwhile."""
        return self._closed.wait(seconds)

    def close(self) -> None:
        self._closed.set()
        self.cap.release()


# --- still images -----------------------------------------------------------------------------


class ImageListSource(Source):
    """One image, a folder or a glob: unreadable files are skipped, counted and reported."""

    def __init__(self, paths: list[Path], description: str, loop: bool = False):
        super().__init__()
        if not paths:
            raise SourceError(f"no images found in {description}", f"supported: {' '.join(IMAGE_EXTENSIONS)}")
        self.paths, self.description, self.loop = paths, description, loop
        self.current: Path | None = None

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        while True:
            good = 0
            for p in self.paths:
                try:
                    img = read_image(p)
                except InputError as e:
                    self.skipped += 1
                    _warn(f"skipping {p}: {e.message}")
                    continue
                good += 1
                self.current = p
                yield img, time.perf_counter()
            if not self.loop or not good:
                return


# --- the camera stand-in ----------------------------------------------------------------------


PUBLIC_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # public domain (NASA, SpaceX) or CC0


def sample_photos(names: tuple[str, ...] = (*PUBLIC_PHOTOS, "immunohistochemistry")) -> list[np.ndarray]:
    """Real photos shipped with scikit-image (the `demo` extra), as BGR; empty when it is absent.

    The ``PUBLIC_PHOTOS`` are free of copyright restrictions (scikit-image's docstrings), so pictures
    made from them may be committed (the README's contact sheet).
    """
    try:
        import skimage.data as data
    except ImportError:
        return []
    photos = []
    for name in names:
        try:
            photos.append(cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR))
        except Exception:  # a sample that needs a download, or an older scikit-image
            continue
    return photos


def _generated_canvas(h: int = 720, w: int = 2400, seed: int = 0) -> np.ndarray:
    """A colourful synthetic panorama (soft blobs, stripes, edges) when no photos are installed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    canvas = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        canvas[..., c] = 0.5 + 0.25 * np.sin(xx / (90 + 40 * c) + c) * np.cos(yy / (70 + 25 * c))
    for _ in range(40):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 120)
        color = rng.uniform(0, 1, 3)
        mask = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
        canvas = canvas * (1 - mask) + color * mask
    img = (np.clip(canvas, 0, 1) * 255).astype(np.uint8)
    for _ in range(25):
        p1 = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        p2 = (p1[0] + int(rng.uniform(-200, 200)), p1[1] + int(rng.uniform(-200, 200)))
        cv2.rectangle(img, p1, p2, tuple(int(v) for v in rng.integers(0, 255, 3)), int(rng.integers(2, 8)))
    return img


class SampleSource(Source):
    """A camera stand-in: slow pans and zooms over one real photo at a time, cross-fading to the next.

    One photo per view (never a panorama of photos side by side, whose hard seams looked like a
    broken camera), so every frame is a plausible camera picture. Live by default (frames are paced
    like a camera and stale ones dropped); ``live=False`` gives every frame as fast as it is
    consumed. ``frames`` bounds the run (None = endless).
    """

    SHOT_S = 8.0  # seconds on one photo, the cross-fade included
    FADE_S = 1.5

    def __init__(self, size: tuple[int, int] = (480, 640), fps: float = 30.0, frames: int | None = None,
                 live: bool = True, seed: int = 0):
        super().__init__()
        self.h, self.w = size
        self.fps, self.frames, self.live = fps, frames, live
        photos = sample_photos()
        if photos:
            self.photos = [cv2.resize(p, (round(p.shape[1] * 720 / p.shape[0]), 720), interpolation=cv2.INTER_AREA)
                           for p in photos]
            self.description = f"sample ({len(photos)} scikit-image photos)"
        else:
            self.photos = [_generated_canvas(seed=seed)]
            self.description = "sample (generated frames; install artcam[demo] for real photos)"
        self._M = np.zeros((2, 3), np.float64)
        self._out = np.empty((self.h, self.w, 3), np.uint8)
        self._fade = np.empty((self.h, self.w, 3), np.uint8)

    def _view(self, k: int, u: float, dst: np.ndarray) -> np.ndarray:
        """Photo ``k`` at ``u`` seconds into its shot (``-FADE_S`` while it fades in): a linear pan
        across it (alternating direction per shot) with a slow zoom, always inside the photo."""
        img = self.photos[k % len(self.photos)]
        ch, cw = img.shape[:2]
        p = (u + self.FADE_S) / (self.SHOT_S + self.FADE_S)  # 0 -> 1 over the shot, fade-in included
        if k % 2:
            p = 1.0 - p
        zoom = 1.12 + 0.12 * math.sin(u * 0.7 + k)  # 1.0 .. 1.24: room to pan both ways
        view_w = min(cw, ch * self.w / self.h) / zoom
        scale = self.w / view_w
        view_h = self.h / scale
        cx = view_w / 2 + (cw - view_w) * p
        cy = view_h / 2 + (ch - view_h) * (0.5 + 0.4 * math.sin(u * 0.31 + 2 * k))
        M = self._M
        M[0, 0] = M[1, 1] = scale
        M[0, 2] = self.w / 2 - cx * scale
        M[1, 2] = self.h / 2 - cy * scale
        return cv2.warpAffine(img, M, (self.w, self.h), dst=dst, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)

    def frame_at(self, i: int) -> np.ndarray:
        t = i / self.fps
        k, u = divmod(t, self.SHOT_S)
        k = int(k)
        out = self._view(k, u, self._out)
        fade_in = u - (self.SHOT_S - self.FADE_S)  # the last FADE_S seconds blend into the next shot
        if fade_in > 0:
            a = fade_in / self.FADE_S
            a = a * a * (3 - 2 * a)  # smoothstep: no visible start or end of the fade
            nxt = self._view(k + 1, fade_in - self.FADE_S, self._fade)
            cv2.addWeighted(out, 1.0 - a, nxt, a, 0.0, dst=out)
        return out

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        start = time.perf_counter()
        i = 0
        while self.frames is None or i < self.frames:
            if self.live:
                due = start + i / self.fps
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            frame = self.frame_at(i).copy()
            yield frame, time.perf_counter()
            i += 1


# --- the factory ------------------------------------------------------------------------------


def _is_image_glob(spec: str) -> bool:
    return any(ch in spec for ch in "*?[")


def open_source(spec: str, *, loop: bool = False, size: tuple[int, int] | None = None, fps: float | None = None,
                frames: int | None = None, live: bool | None = None, reconnect: ReconnectPolicy | None = None) -> Source:
    """Open ``0``, ``/dev/video0``, a video, an image, a folder, a glob, a URL, a GStreamer
    pipeline (contains ``!``) or ``sample``. ``size`` is (H, W) for cameras and ``sample``;
    ``reconnect`` is what cameras and streams do when frames stop (``reconnect.py``)."""
    spec = str(spec).strip()
    if not spec:
        raise SourceError("empty --source", "use 0, a file, a folder, a URL or sample")
    if spec == "sample" or spec.startswith("sample:"):
        return SampleSource(size=size or (480, 640), fps=fps or 30.0, frames=frames,
                            live=True if live is None else live)
    if spec.startswith("csi://"):  # a Jetson CSI camera through GStreamer
        from .jetson import csi_target

        pipeline, description = csi_target(spec, size=size, fps=fps)
        return CaptureSource(pipeline, [(cv2.CAP_GSTREAMER, "GStreamer")], live=True, description=description,
                             reconnect=True, policy=reconnect, what="camera")
    if spec.isdigit() or spec.startswith("/dev/video"):
        target = int(spec) if spec.isdigit() else spec
        backends = [(cv2.CAP_V4L2, "V4L2"), (cv2.CAP_ANY, "any backend")] if sys.platform.startswith("linux") \
            else [(cv2.CAP_ANY, "any backend")]
        if isinstance(target, str) and not os.path.exists(target):
            raise SourceError(f"camera {target} does not exist", camera_hint())
        return CaptureSource(target, backends, live=True, description=f"camera {spec}", size=size,
                             reconnect=True, policy=reconnect, what="camera")
    if "!" in spec:
        if "GStreamer: YES" not in " ".join(cv2.getBuildInformation().split()):
            raise SourceError("this OpenCV build has no GStreamer support",
                              "install OpenCV built with GStreamer (e.g. JetPack's python3-opencv)")
        return CaptureSource(spec, [(cv2.CAP_GSTREAMER, "GStreamer")], live=True, reconnect=True,
                             description="GStreamer pipeline", policy=reconnect)
    if spec.lower().startswith(STREAM_PREFIXES):
        url_path = spec.split("?", 1)[0].lower()
        if url_path.endswith(VIDEO_EXTENSIONS):  # a video file on a web server: every frame, ends at its end
            return CaptureSource(spec, [(cv2.CAP_FFMPEG, "FFmpeg")], live=False if live is None else live,
                                 loop=loop, description=f"video {spec}")
        return CaptureSource(spec, [(cv2.CAP_FFMPEG, "FFmpeg")], live=True, reconnect=True,
                             description=spec, policy=reconnect)
    p = Path(spec)
    if p.is_dir():
        paths = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTENSIONS and q.is_file())
        return ImageListSource(paths, f"folder {p}", loop=loop)
    if _is_image_glob(spec):
        paths = sorted(Path(q) for q in _glob.glob(spec) if Path(q).suffix.lower() in IMAGE_EXTENSIONS)
        return ImageListSource(paths, f"glob {spec}", loop=loop)
    if not p.exists():
        raise SourceError(f"source not found: {spec}", "use 0, /dev/videoN, a file, a folder, a glob, a URL or sample")
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageListSource([p], f"image {p}", loop=loop)
    if p.suffix.lower() not in VIDEO_EXTENSIONS:
        _warn(f"{p}: unknown extension {p.suffix!r}; trying it as a video")
    src = CaptureSource(str(p), [(cv2.CAP_ANY, "any backend")], live=False if live is None else live, loop=loop,
                        description=f"video {p}")
    return src
