"""Where frames go: a window with a HUD, a video file, an image folder, the web viewer, nowhere.

Every file is written under a temporary name beside it (``.artcam-<pid>@<host>-...partial<ext>``) and renamed
when complete: ``close()`` publishes, ``abort()`` (an interrupted or failed run) discards, so the final
name holds either the previous file or a complete new one, never a truncated video.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import SinkError
from .fileio import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, atomic_path, probe_writable, write_image

# events a sink can return from write(): the pipeline acts on them
NEXT_STYLE, PREV_STYLE, SNAPSHOT, PAUSE, QUIT = "next", "prev", "snapshot", "pause", "quit"


class Sink:
    description = "sink"

    def write(self, frame: np.ndarray, info: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        """The run finished: publish what was written."""

    def abort(self) -> None:
        """The run was interrupted or failed: publish nothing (the previous output stays as it was)."""
        self.close()


def finish(sink: Sink, complete: bool) -> None:
    """``sink.close()`` when the run is complete, else ``sink.abort()``."""
    if complete:
        sink.close()
    else:
        sink.abort()


class NullSink(Sink):
    description = "null"

    def __init__(self) -> None:
        self.frames = 0

    def write(self, frame, info):
        self.frames += 1
        return None


def draw_hud(frame: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """Overlay FPS, latency, style and top-k labels (in place, returns the frame)."""
    lines = []
    if info.get("fps"):
        lines.append(f"{info['fps']:.1f} FPS  latency {info.get('latency_ms', 0):.0f} ms")
    if info.get("style"):
        lines.append(f"style: {info['style']}")
    for pred in info.get("predictions", []):
        top = ", ".join(f"{lab} {p:.0%}" for lab, p in zip(pred.labels, pred.probs))
        lines.append(f"{pred.head}: {top}")
    if info.get("predictions") and info.get("predictions_age_ms") is not None:
        lines.append(f"classified {info['predictions_age_ms']:.0f} ms ago")
    if info.get("paused"):
        lines.append("paused (space)")
    if not lines:
        return frame
    scale = max(0.4, min(frame.shape[1] / 1000, 1.0))
    lh = int(22 * scale / 0.6)
    box_h = lh * len(lines) + 8
    roi = frame[:box_h, : min(frame.shape[1], int(560 * scale / 0.6))]
    cv2.convertScaleAbs(roi, dst=roi, alpha=0.45)
    for i, text in enumerate(lines):
        cv2.putText(frame, text, (6, lh * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def display_available() -> tuple[bool, str]:
    """Whether cv2 can open a window here, and why not."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY is not set)"
    info = " ".join(cv2.getBuildInformation().split())
    if not any(f"{gui}: YES" in info for gui in ("GTK+", "GTK2", "GTK3", "QT", "Cocoa", "Win32 UI", "GTK")):
        return False, "this OpenCV build has no GUI (opencv-python-headless); pip install opencv-python for windows"
    return True, ""


class WindowSink(Sink):
    """An OpenCV window; keys: n/p next/previous style, s snapshot, space pause, q/Esc quit."""

    description = "window"

    def __init__(self, title: str = "artcam", snapshot_dir: str | Path = "."):
        ok, why = display_available()
        if not ok:
            raise SinkError(f"cannot open a window: {why}", "write to a file with -o out.mp4, or use -o null")
        self.title = title
        self.snapshot_dir = Path(snapshot_dir)
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    def write(self, frame, info):
        cv2.imshow(self.title, draw_hud(frame, info))
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return QUIT
        if key == ord("n"):
            return NEXT_STYLE
        if key == ord("p"):
            return PREV_STYLE
        if key == ord(" "):
            return PAUSE
        if key == ord("s"):
            path = self.snapshot_dir / time.strftime("artcam_%Y%m%d_%H%M%S.png")
            write_image(path, frame)
            print(f"artcam: snapshot {path}", file=sys.stderr)
            return SNAPSHOT
        if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return QUIT
        return None

    def close(self) -> None:
        cv2.destroyWindow(self.title)


class VideoFileSink(Sink):
    """A video file, opened on the first frame (its size) and renamed into place on close."""

    FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".mov": "mp4v", ".m4v": "mp4v", ".mkv": "mp4v"}

    def __init__(self, path: str | Path, fps: float = 30.0, hud: bool = False):
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in self.FOURCC:
            raise SinkError(f"cannot write video {self.path}: unsupported extension {ext!r}",
                            f"use one of {' '.join(self.FOURCC)}")
        probe_writable(self.path.parent)
        self.fps, self.hud = fps, hud
        self.description = f"video {self.path}"
        self.writer = None
        self.frames = 0
        self._ctx = None
        self._tmp: Path | None = None

    def write(self, frame, info):
        if self.writer is None:
            self._ctx = atomic_path(self.path)
            self._tmp = self._ctx.__enter__()
            h, w = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*self.FOURCC[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self._tmp), fourcc, float(self.fps), (w, h))
            if not self.writer.isOpened():
                self._abort()
                raise SinkError(f"OpenCV cannot write {self.path.suffix} video here", "try -o out.avi")
            self.size = (h, w)
        if frame.shape[:2] != self.size:
            frame = cv2.resize(frame, (self.size[1], self.size[0]))
        self.writer.write(draw_hud(frame, info) if self.hud else frame)
        self.frames += 1
        return None

    def _abort(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            try:
                ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)  # removes the temporary file
            except RuntimeError:
                pass

    def abort(self) -> None:
        self._abort()

    def close(self) -> None:
        if self.writer is None:
            return
        try:
            self.writer.release()
            self.writer = None
        except BaseException:
            self._abort()
            raise
        ctx, self._ctx = self._ctx, None
        ctx.__exit__(None, None, None)  # rename into place


class FolderSink(Sink):
    """One image per frame; frames from an image folder keep their file names."""

    def __init__(self, folder: str | Path, ext: str = ".jpg", hud: bool = False):
        self.folder = probe_writable(Path(folder))
        self.ext, self.hud = ext, hud
        self.description = f"folder {self.folder}"
        self.frames = 0

    def write(self, frame, info):
        name = info.get("name")
        stem = Path(name).stem if name else f"frame_{self.frames:06d}"
        write_image(self.folder / f"{stem}{self.ext}", draw_hud(frame, info) if self.hud else frame)
        self.frames += 1
        return None


class ImageFileSink(Sink):
    """A single output image: the last frame written, written (atomically) when the run completes."""

    def __init__(self, path: str | Path, hud: bool = False):
        self.path = Path(path)
        probe_writable(self.path.parent if str(self.path.parent) else Path("."))
        self.hud = hud
        self.description = f"image {self.path}"
        self.frames = 0
        self._last: np.ndarray | None = None

    def write(self, frame, info):
        self._last = draw_hud(frame.copy(), info) if self.hud else frame.copy()  # processors reuse buffers
        self.frames += 1
        return None

    def close(self) -> None:
        last, self._last = self._last, None
        if last is not None:
            write_image(self.path, last)

    def abort(self) -> None:
        self._last = None


def open_sink(spec: str | None, *, fps: float = 30.0, hud: bool = False, token: str | None = None,
              max_clients: int = 4) -> Sink:
    """``window``, ``null``, ``http://HOST:PORT`` (the web viewer; ``token`` and ``max_clients`` are
    its own), a video file, an image file or a folder."""
    if spec is None or spec == "window":
        return WindowSink()
    if spec in ("null", "none"):
        return NullSink()
    if spec.startswith("http://"):
        from .viewer import ViewerSink, parse_http_spec  # the viewer imports this module

        host, port = parse_http_spec(spec)
        return ViewerSink(host, port, token=token, max_clients=max_clients, hud=hud)
    p = Path(spec)
    ext = p.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return VideoFileSink(p, fps=fps, hud=hud)
    if ext in IMAGE_EXTENSIONS:
        return ImageFileSink(p, hud=hud)
    if ext and not p.is_dir():
        raise SinkError(f"unknown output type {ext!r} for {p}", "use a video (.mp4/.avi), an image, a folder, http://HOST:PORT or null")
    return FolderSink(p, hud=hud)
