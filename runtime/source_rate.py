"""Does a live source deliver the frame rate it promised? Said once, and kept apart from dropped frames.

A camera asked for 30 FPS that delivers 15 (low light, USB bandwidth, a driver that ignores the
request) is not the pipeline dropping frames: frames that never arrived are not drops. The capture
thread times arrivals; after a settling window, a rate clearly below the promised one is reported in
one line, and the measured rate goes into the run summary.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

SETTLE_S = 1.0  # the first second (camera start-up, auto exposure) does not count
WINDOW_S = 2.0  # then measure over this long
SHORT_BY = 0.85  # report when the measured rate is below this share of the promised one


class SourceRate:
    """Feed ``tick()`` once per captured frame; ``measured_fps`` is the rate after the settling window."""

    def __init__(self, promised_fps: float | None, description: str = "the source",
                 say: Callable[[str], None] | None = None):
        self.promised = promised_fps if promised_fps and promised_fps > 0 else None
        self.description = description
        self.say = say or (lambda msg: print(msg, file=sys.stderr))
        self.measured_fps: float | None = None
        self.reported = False
        self._t0: float | None = None
        self._start: float | None = None
        self._n = 0
        self._last = 0.0

    def tick(self, t: float | None = None) -> None:
        t = time.perf_counter() if t is None else t
        if self._t0 is None:
            self._t0 = t
        if t - self._t0 < SETTLE_S:
            return
        if self._start is None:
            self._start, self._n = t, 0
            return
        self._n += 1
        self._last = t
        span = t - self._start
        if span >= WINDOW_S:
            self.measured_fps = self._n / span
            if not self.reported and self.promised and self.measured_fps < SHORT_BY * self.promised:
                self.reported = True
                self.say(f"artcam: {self.description} delivers {self.measured_fps:.1f} FPS, not the "
                         f"{self.promised:g} asked; the frames it does not send are not counted as dropped")

    def to_dict(self) -> dict:
        if self.measured_fps is None and self._n and self._last > self._start:
            self.measured_fps = self._n / (self._last - self._start)
        return {"source_fps": None if self.measured_fps is None else round(self.measured_fps, 2),
                "source_fps_asked": self.promised, "source_slow": self.reported}
