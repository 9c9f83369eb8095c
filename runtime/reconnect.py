"""A source that comes back: reopen a camera that was unplugged, without restarting the process.

A USB camera that disappears makes ``cv2.VideoCapture.read`` fail (at once, or after V4L2's own
timeout) and the source end. :class:`Reconnecting` wraps any source behind an opener: when the inner
source ends or raises a :class:`SourceError`, it closes it and reopens it with a backoff (0.5 s,
doubling, at most ``max_backoff_s``) for as long as it takes, telling :class:`Health` it is
``camera`` (the viewer shows "no camera", /healthz answers 503 ``camera``, and the systemd watchdog
stays fed because the process is alive and working on it). Frames resume as soon as it opens again.

The first open is not retried: a camera missing at start is a mistake to report (exit 2), not a
loss to wait out. Network streams reconnect inside ``sources.CaptureSource`` already.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, Iterator

import numpy as np

from .errors import SourceError
from .sources import Source

NO_CAMERA = "no camera"


class Reconnecting(Source):
    """``opener()`` -> a fresh inner source; ``first`` is the one already opened (see module docstring)."""

    def __init__(self, opener: Callable[[], Source], first: Source | None = None, *, health=None,
                 first_backoff_s: float = 0.5, max_backoff_s: float = 5.0, beat_s: float = 1.0):
        super().__init__()
        self.opener, self.inner = opener, first if first is not None else opener()
        self.health = health
        self.first_backoff_s, self.max_backoff_s, self.beat_s = first_backoff_s, max_backoff_s, beat_s
        self.live = True
        self.description = self.inner.description
        self.fps = self.inner.fps
        self.state = "ok"  # or NO_CAMERA while it reopens
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        failures = 0
        while not self._closed.is_set():
            inner = self.inner
            if inner is not None:
                why = "stopped delivering frames"
                try:
                    for item in inner:
                        if failures:
                            failures = 0
                            self._back()
                        yield item
                        if self._closed.is_set():
                            return
                except SourceError as e:
                    why = e.message
                self._drop(inner)
                self._lost(why)
            failures += 1
            self._wait(min(self.first_backoff_s * 2 ** (failures - 1), self.max_backoff_s))
            if self._closed.is_set():
                return
            try:
                opened = self.opener()
            except SourceError:
                continue  # still gone: wait longer
            with self._lock:
                if self._closed.is_set():
                    opened.close()
                    return
                self.inner = opened
            self.reconnects += 1

    def _drop(self, inner: Source) -> None:
        with self._lock:
            if self.inner is inner:
                self.inner = None
        inner.close()

    def _lost(self, why: str) -> None:
        if self.state != NO_CAMERA:
            print(f"artcam: {self.description}: {why}; no camera, reopening it until it is back", file=sys.stderr)
        self.state = NO_CAMERA
        if self.health is not None:
            self.health.camera_lost()

    def _back(self) -> None:
        self.state = "ok"
        print(f"artcam: {self.description}: back after {self.reconnects} reopen(s)", file=sys.stderr)
        if self.health is not None:
            self.health.camera_back()

    def _wait(self, seconds: float) -> None:
        """Sleep, saying "still reopening" to the health every ``beat_s`` (so it never reads as a stall)."""
        end = time.monotonic() + seconds
        while not self._closed.is_set():
            if self.health is not None:
                self.health.camera_lost()
            left = end - time.monotonic()
            if left <= 0:
                return
            self._closed.wait(min(left, self.beat_s))

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            inner, self.inner = self.inner, None
        if inner is not None:
            inner.close()


def is_local_camera(spec: str) -> bool:
    """``0``, ``/dev/videoN`` or ``csi://N``: a device on this machine that can be unplugged and come back."""
    spec = str(spec).strip()
    return spec.isdigit() or spec.startswith(("/dev/video", "csi://"))
