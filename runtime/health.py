"""Is the live run healthy? One word that a supervisor, a load balancer or systemd can act on.

A run is healthy while frames reach its output. Everything else is one of a few reasons, chosen so a
monitor can decide what to do without reading logs:

* ``starting``: no frame has gone out yet (the camera is opening, the model loading and warming up);
* ``stalled``:  no frame for ``stall_s`` seconds (a frozen camera or stream, a hung model), or a network
  stream being reopened: restart it;
* ``camera``:   the camera stopped giving frames and is being reopened under the reconnect policy
  (``reconnect.py``); the process is alive and busy (it exits 2 if the camera stays away);
* ``model``:    the model failed to load or to run; the process is about to exit with the error.

Frames are counted at the output (``frame()``, called by the web viewer's ``write`` or by
:class:`HealthSink` around any other sink), so a stall anywhere upstream shows. A paused pipeline keeps
writing its last frame, so pausing from the viewer is not a stall; the frames the pipeline repeats to show
a silent source's state (``status_only``) are not counted. What the source itself knows comes from its
:class:`~artcam.runtime.reconnect.SourceHealth` (``source``), the one reconnect mechanism for cameras and
streams: while a camera is being reopened the word is ``camera``, for a stream ``stalled``. The same word answers
``GET /healthz`` (``viewer.py``), the ``artcam live --json`` health lines and the systemd watchdog
(:class:`HealthMonitor`, ``sdnotify.py``), so the three never disagree.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from typing import Any, Callable

from . import sdnotify
from .reconnect import DEFAULT_POLICY, SourceHealth
from .sink_base import Sink

OK, STARTING, STALLED, CAMERA, MODEL = "ok", "starting", "stalled", "camera", "model"
DEFAULT_STALL_S = DEFAULT_POLICY.stall_s  # one stall time: --reconnect stall=S


class Health:
    """Thread-safe health of one run: written by the output thread (``frame``) and the command
    (``fail``), with the source's own state read from ``source`` (a ``SourceHealth``, written by the
    capture thread); read by any thread (``status``)."""

    def __init__(self, stall_s: float = DEFAULT_STALL_S, clock: Callable[[], float] = time.monotonic,
                 source: SourceHealth | None = None):
        self.stall_s = float(stall_s)
        self._clock = clock
        self.source = source
        self._lock = threading.Lock()
        self._frames = 0
        self._last_frame: float | None = None
        self._failed: str | None = None

    def frame(self) -> None:
        now = self._clock()
        with self._lock:
            self._frames += 1
            self._last_frame = now

    def fail(self, reason: str = MODEL) -> None:
        """A failure the run cannot recover from (sticky)."""
        with self._lock:
            self._failed = reason

    @contextlib.contextmanager
    def failing_as(self, reason: str = MODEL):
        """Mark ``reason`` when the block raises (not on Ctrl-C), then let the error through."""
        try:
            yield
        except Exception:
            self.fail(reason)
            raise

    def status(self) -> str:
        """``ok`` or the one-word reason why not (see the module docstring)."""
        now = self._clock()
        src = self.source
        with self._lock:
            if self._failed:
                return self._failed
            if src is not None and src.state != "ok":  # stalled, reconnecting, or given up (lost)
                # a camera being reopened is alive, for as long as the policy's attempts can take (an open
                # that hangs past that is a stall like any other)
                reopening = src.state != "lost" and src.no_frames_s() <= src.give_up_s + self.stall_s
                return CAMERA if src.what == "camera" and reopening else STALLED
            if self._last_frame is None:
                return STARTING
            return OK if now - self._last_frame <= self.stall_s else STALLED

    def report(self) -> dict[str, Any]:
        """The status with the counters a supervisor may log (no picture, no settings, no token)."""
        status = self.status()
        with self._lock:
            since = None if self._last_frame is None else round(self._clock() - self._last_frame, 2)
            report = {"health": status, "frames": self._frames, "since_last_frame_s": since}
        if self.source is not None:
            report["source_state"] = self.source.as_dict()["source_state"]
        return report

    @property
    def alive(self) -> bool:
        """Whether the process is doing its job or knowingly recovering (the watchdog is fed)."""
        return self.status() in (OK, CAMERA)


class HealthSink(Sink):
    """Any sink, with every written frame counted in ``health`` (the web viewer counts its own)."""

    def __init__(self, inner: Sink, health: Health):
        self.inner, self.health = inner, health
        self.description = inner.description

    @property
    def shows_status(self) -> bool:
        return self.inner.shows_status

    def write(self, frame, info):
        if not info.get("status_only"):
            self.health.frame()
        return self.inner.write(frame, info)

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


class HealthMonitor:
    """A background thread that turns :class:`Health` into signals for supervisors.

    * ``json_lines``: print ``{"health": ..., "frames": ..., "since_last_frame_s": ...}`` on stdout when
      the status changes and every ``every_s`` seconds (``artcam live --json``);
    * systemd (when ``$NOTIFY_SOCKET`` is set): ``READY=1`` at the first frame, ``STATUS=`` on every
      change, and ``WATCHDOG=1`` every half ``$WATCHDOG_USEC`` while :attr:`Health.alive`; a stalled
      run stops pinging, so systemd kills it and restarts it (``Restart=on-failure``).
    """

    def __init__(self, health: Health, *, json_lines: bool = False, every_s: float = 10.0,
                 out=None, tick_s: float = 0.25):
        self.health, self.json_lines, self.every_s = health, json_lines, every_s
        self.out = out if out is not None else sys.stdout
        self.tick_s = tick_s
        self.notifier = sdnotify.Notifier.from_env()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_status = ""
        self._last_line = 0.0
        self._ready = False

    def start(self) -> HealthMonitor:
        if self.json_lines or self.notifier is not None:
            self._thread = threading.Thread(target=self._run, name="artcam-health", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and give the final status (a failure set just before is reported)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
            self.check(final=True)
        if self.notifier is not None:
            self.notifier.send("STOPPING=1")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _run(self) -> None:
        self.check()
        while not self._stop.wait(self.tick_s):
            self.check()

    def check(self, final: bool = False) -> None:
        """One round: report a change (or the periodic line) and feed the watchdog."""
        report = self.health.report()
        status = report["health"]
        now = time.monotonic()
        changed = status != self._last_status
        if self.json_lines and (changed or now - self._last_line >= self.every_s):
            print(json.dumps(report), file=self.out, flush=True)
            self._last_line = now
        n = self.notifier
        if n is not None and not final:
            if status == OK and not self._ready:
                n.send("READY=1")
                self._ready = True
            if changed:
                n.send(f"STATUS=health {status}, {report['frames']} frames")
            if self._ready and status in (OK, CAMERA):
                n.watchdog()
        self._last_status = status
