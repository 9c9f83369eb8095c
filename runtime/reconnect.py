"""What a live source does when frames stop coming, and what everyone else can read about it.

One policy for every source that can go away and come back (a network stream that stops sending, a
USB camera unplugged and plugged in again), so the command line, the HUD, the web viewer and a health
check all speak of the same thing:

* :class:`ReconnectPolicy`: no frame for ``stall_s`` seconds means the source has stalled (for FFmpeg
  streams this is also its open and read timeout, so a silent stream is noticed in ``stall_s``, not in
  FFmpeg's own 30 s); then up to ``attempts`` reopenings, ``backoff_s`` apart and doubling up to
  ``max_backoff_s``; after the last one the run stops with exit 2 and one line. ``--reconnect
  stall=S,attempts=N,backoff=B`` sets it.
* :class:`SourceHealth`: the source's state as plain fields, written by the capture thread and read by
  anyone (the pipeline's stats, the HUD, the viewer's ``/api/state``, and ``health.py``'s one word for
  ``/healthz``, ``--json`` and the systemd watchdog: ``camera`` while a camera is reopened): ``source_state``
  is ``ok``, ``missing`` (no frame for ``MISSING_AFTER_S``, still waiting), ``stalled``,
  ``reconnecting`` or ``lost``; ``stalled_since`` is the wall-clock time (Unix seconds) of the last frame
  while not ``ok``, else None.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

MISSING_AFTER_S = 1.0  # a live source silent this long is shown as missing frames (HUD, viewer)


@dataclass(frozen=True)
class ReconnectPolicy:
    stall_s: float = 5.0
    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reopening attempt ``attempt`` (1-based)."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)

    def worst_case_s(self) -> float:
        """From the last frame to giving up: the stall, then per attempt its wait, an open and a first read
        (each bounded by ``stall_s``)."""
        return self.stall_s + sum(self.delay(k) + 2 * self.stall_s for k in range(1, self.attempts + 1))

    def as_option(self) -> str:
        """The ``--reconnect`` value that gives this policy back (``parse_policy(p.as_option()) == p``)."""
        return (f"stall={self.stall_s:g},attempts={self.attempts},backoff={self.backoff_s:g},"
                f"max-backoff={self.max_backoff_s:g}")

    def describe(self) -> str:
        return (f"stall {self.stall_s:g} s, {self.attempts} attempts, backoff {self.backoff_s:g} s "
                f"(given up after at most {self.worst_case_s():.0f} s)")


DEFAULT_POLICY = ReconnectPolicy()
_KEYS = {"stall": "stall_s", "attempts": "attempts", "backoff": "backoff_s", "max-backoff": "max_backoff_s"}


def parse_policy(text: str) -> ReconnectPolicy:
    """``stall=3,attempts=2,backoff=0.5`` (any subset; the rest keep their defaults); an argparse type."""
    values: dict[str, Any] = {}
    for part in text.replace(" ", "").split(","):
        key, eq, raw = part.partition("=")
        if not eq or key not in _KEYS:
            raise argparse.ArgumentTypeError(f"{part!r}: use stall=SECONDS,attempts=N,backoff=SECONDS")
        try:
            v = int(raw) if key == "attempts" else float(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key}={raw!r} is not a number") from None
        low, high = {"stall": (0.2, 600.0), "attempts": (0, 100), "backoff": (0.0, 600.0),
                     "max-backoff": (0.0, 3600.0)}[key]
        if not (math.isfinite(v) and low <= v <= high):
            raise argparse.ArgumentTypeError(f"{key}={raw} is outside {low:g}..{high:g}")
        values[_KEYS[key]] = v
    return ReconnectPolicy(**values)


class SourceHealth:
    """A source's liveness in plain fields (see the module docstring); cheap to update per frame."""

    def __init__(self, what: str = "source", give_up_s: float = math.inf):
        self.what = what  # "stream", "camera": the words the HUD uses
        self.give_up_s = give_up_s  # from the last frame to giving up at most (the policy's worst case)
        self._lock = threading.Lock()
        self.state = "ok"
        self.last_frame = time.monotonic()
        self._last_frame_wall = time.time()
        self.stalls = 0
        self.reconnects = 0
        self.attempt = 0
        self.attempts = 0

    def frame(self) -> None:
        """A frame arrived."""
        self.last_frame = time.monotonic()
        self._last_frame_wall = time.time()
        if self.state != "ok":
            with self._lock:
                if self.state in ("reconnecting", "stalled"):
                    self.reconnects += 1
                self.state, self.attempt = "ok", 0

    def stalled(self) -> None:
        with self._lock:
            self.state = "stalled"
            self.stalls += 1

    def reconnecting(self, attempt: int, attempts: int) -> None:
        with self._lock:
            self.state, self.attempt, self.attempts = "reconnecting", attempt, attempts

    def lost(self) -> None:
        with self._lock:
            self.state = "lost"

    def no_frames_s(self) -> float:
        return time.monotonic() - self.last_frame

    def as_dict(self) -> dict[str, Any]:
        """``source_state``, ``stalled_since`` (Unix seconds or None), ``no_frames_s``, ``stalls``,
        ``reconnects``, and while reconnecting ``attempt`` / ``attempts``."""
        with self._lock:
            state, attempt, attempts = self.state, self.attempt, self.attempts
        quiet = self.no_frames_s()
        if state == "ok" and quiet >= MISSING_AFTER_S:
            state = "missing"
        d = {"source_state": state, "stalled_since": None if state == "ok" else round(self._last_frame_wall, 3),
             "no_frames_s": round(quiet, 2), "stalls": self.stalls, "reconnects": self.reconnects}
        if state == "reconnecting":
            d.update(attempt=attempt, attempts=attempts)
        return d

    def status_line(self, d: dict[str, Any] | None = None) -> str:
        """The HUD's words for a source that is not ``ok`` ("" when it is)."""
        d = d or self.as_dict()
        return status_line(d, self.what)


def status_line(d: dict[str, Any], what: str = "source") -> str:
    state = d.get("source_state", "ok")
    if state == "ok":
        return ""
    head = f"no frames from the {what} for {d.get('no_frames_s', 0):.0f} s"
    if state == "reconnecting":
        return f"{head}: reopening ({d.get('attempt')}/{d.get('attempts')})"
    if state == "lost":
        return f"{head}: giving up"
    return head + (": stalled" if state == "stalled" else "")
