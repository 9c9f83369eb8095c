"""The web viewer: watch and steer a headless device from a browser (``artcam live -o http://HOST:PORT``).

One sink serves a static page (``static/viewer.html``, package data, no build step), an MJPEG
stream, a snapshot and a small JSON control API::

    GET  /                the viewer page
    GET  /stream.mjpg     multipart JPEG stream (what the page's <img> shows)
    GET  /snapshot.jpg    the newest frame
    GET  /api/state       model, styles, style weights, strength, pause, top-k, live statistics
    GET  /healthz         ``ok`` (200) or one word why not (503): ``starting``, ``stalled``, ``camera``,
                          ``model`` (``health.py``); the only route without the token: it reveals nothing else
    POST /api/style       {"name": N} | {"index": I} | {"blend": {N: w, ...} or [w, ...]}
    POST /api/strength    {"strength": 0..1}
    POST /api/pause       {"paused": true|false}, or {} to toggle

Why it is built this way:

* Safe by default (``access.py``): loopback unless asked; elsewhere a token on every request,
  the page, the stream and the snapshot included (401 and nothing else without it).
* The pipeline never waits for a viewer: ``write()`` encodes one JPEG and publishes it in a
  one-frame slot. Each stream client keeps the sequence number it last sent, so it always sends
  the newest frame and skips the ones it was too slow for (a per-client latest-frame slot, never a
  queue): the stream adds at most the frame being sent to the pipeline's own latency. A client
  that cannot take a frame within ``send_timeout_s`` is dropped.
* Bounded: at most ``max_clients`` streams (more get 503) and a fixed number of connections.
* Changes apply on the next frame, without reloading the model: the API calls
  ``FrameProcessor.request``, which checks the values now and applies them between frames.
  Pause uses the pipeline's own pause (the sink returns ``PAUSE`` from ``write()``).
"""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from . import access, control
from .connections import REQUEST_DEADLINE_S, DeadlineReader, PendingConnections
from .errors import ArtcamError, SinkError
from .health import Health
from .percentiles import percentiles
from .sink_base import PAUSE, Sink, draw_hud

PAGE = Path(__file__).parent / "static" / "viewer.html"
LATENCY_WINDOW = 300  # frames in the live latency percentiles (10 s at 30 FPS)
SEND_BUFFER_BYTES = 128 * 1024  # a small kernel send buffer: frames wait in our slot, not in the socket
MAX_STREAMS = 64  # --max-clients: each stream is a thread and a JPEG per frame
IDLE_RESEND_S = 2.0  # while no new frame comes (paused), resend the last one: finds clients that left


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a fixed number of slots for requests that arrived (past it, a 503) and
    bounded waiting for those that have not (``connections.py``)."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog: a burst of connections must not drop a client's SYN (1 s retry)
    allow_reuse_port = False  # a port in use must be an error, never a second server sharing it

    def __init__(self, address, handler, max_connections: int, family=socket.AF_INET):
        self.address_family = family
        self._slots = threading.BoundedSemaphore(max_connections)
        self.pending = PendingConnections()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        self.pending.admit(request, client_address[0])  # may close the oldest waiting connection
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.pending.arrived(request)
            raise

    def take_slot(self) -> bool:
        return self._slots.acquire(blocking=False)

    def release_slot(self) -> None:
        self._slots.release()

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, OSError):  # a client that left mid-answer: not worth a line
            return
        # a bug: one line (the terminal belongs to the pipeline), the client's connection just closes
        print(f"artcam: viewer: internal error answering {client_address[0]}: {type(e).__name__}: {e}", file=sys.stderr)


class ViewerSink(Sink):
    """Serve the viewer page, the stream, snapshots and the control API; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, *, token: str | None = None,
                 max_clients: int = 4, quality: int = 80, hud: bool = False, send_timeout_s: float = 5.0,
                 health: Health | None = None):
        if not 1 <= max_clients <= MAX_STREAMS:
            raise SinkError(f"--max-clients {max_clients} is outside the allowed range 1..{MAX_STREAMS}")
        host = host.strip("[]") or "127.0.0.1"
        self.host, self.quality, self.hud, self.max_clients = host, quality, hud, max_clients
        self.token, generated = access.resolve_token(host, token)
        try:
            self._page = PAGE.read_bytes()
        except OSError as e:
            raise SinkError(f"the viewer page {PAGE} is missing from this install ({e.strerror})",
                            "reinstall artcam") from e
        # the newest frame (the slot every stream client reads from)
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._closed = False
        self._paused_sent = False
        # what /api/state reports; written by the pipeline's output thread, read by request threads
        self._lock = threading.Lock()
        self._latency: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._last: dict[str, Any] = {}
        self._want_paused = False
        self.frames = 0
        self.streams = 0
        self.slow_dropped = 0
        self.refused = 0
        self.processor = None
        self.model = ""
        self.health = health if health is not None else Health()  # fed by write(), read by /healthz

        handler = type("ViewerHandler", (_Handler,), {"sink": self, "timeout": send_timeout_s})
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.server = _Server((host, port), handler, max_connections=max_clients + 16, family=family)
        except OSError as e:
            raise SinkError(f"cannot serve the viewer on {host}:{port}: {e.strerror}",
                            f"port {port} is taken or not allowed; pick another, e.g. -o http://{host}:{port + 1}"
                            if e.errno in (98, 48, 13, 10048) else "check the address") from e
        self.port = self.server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        self.description = f"web viewer {self.url}" + (" (token required)" if self.token else "")
        if generated:
            where = shown if host not in ("0.0.0.0", "::") else socket.gethostname()
            print(f"artcam: viewer at http://{where}:{self.port}/?token={self.token} (or this device's IP address); "
                  "this token is printed only once (pass --token or ARTCAM_TOKEN to choose it)", file=sys.stderr)
        self.thread = threading.Thread(target=self.server.serve_forever, name="artcam-viewer", daemon=True)
        self.thread.start()

    # -- the pipeline side -------------------------------------------------------------------------
    def attach(self, processor, model: str = "") -> None:
        """Steer this ``FrameProcessor`` from the API (``artcam live`` calls this once it is built)."""
        self.processor, self.model = processor, model

    shows_status = True  # frames that repeat the last one while the source gives none (status_only)

    def write(self, frame, info):
        if not info.get("status_only"):  # a repeated frame saying the source is silent is no sign of life
            self.health.frame()
        paused = bool(info.get("paused"))
        with self._lock:
            self._last = info
            if not paused and not info.get("status_only"):
                self.frames += 1
                if "latency_ms" in info:
                    self._latency.append(float(info["latency_ms"]))
            want = self._want_paused
        if not (paused and self._paused_sent):  # a paused pipeline repeats its last frame: encode it once
            img = draw_hud(frame.copy(), info) if self.hud else frame
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if ok:
                with self._cond:
                    self._jpeg = buf.tobytes()
                    self._seq += 1
                    self._cond.notify_all()
        self._paused_sent = paused
        return PAUSE if paused != want else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # -- the request side --------------------------------------------------------------------------
    def wait_frame(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        """The newest JPEG once its sequence number is past ``after`` (else the current one after
        ``timeout``), with that number; (None, after) when closed or before the first frame."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closed, timeout=timeout)
            if self._closed or self._jpeg is None:
                return None, after
            return self._jpeg, self._seq

    def open_stream(self) -> bool:
        with self._lock:
            if self.streams >= self.max_clients:
                self.refused += 1
                return False
            self.streams += 1
            return True

    def close_stream(self, slow: bool) -> None:
        with self._lock:
            self.streams -= 1
            self.slow_dropped += int(slow)

    @property
    def want_paused(self) -> bool:
        return self._want_paused

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._want_paused = paused

    def state(self) -> dict[str, Any]:
        """What GET /api/state returns."""
        with self._lock:
            last, lat = self._last, list(self._latency)
            stats = {"frames": self.frames, "clients": self.streams, "max_clients": self.max_clients,
                     "slow_clients_dropped": self.slow_dropped, "clients_refused": self.refused,
                     "slow_requests_closed": self.server.pending.evicted}
            paused = self._want_paused
        p = percentiles(lat)
        settings = self.processor.settings() if self.processor is not None else {"styles": [], "weights": [],
                                                                                  "strength": None}
        stats.update(fps=round(float(last.get("fps", 0.0)), 2), dropped=int(last.get("dropped", 0)),
                     latency_ms={k: (round(v, 1) if np.isfinite(v) else None) for k, v in p.items()})
        return {
            "model": self.model, "styles": settings["styles"], "style_weights": settings["weights"],
            "style": last.get("style", ""), "strength": settings["strength"], "paused": paused,
            "predictions": [pr.as_dict() for pr in last.get("predictions", [])],
            "predictions_age_ms": (round(float(last["predictions_age_ms"]), 1)
                                   if last.get("predictions_age_ms") is not None else None),
            "token_required": self.token is not None, "stats": stats, "health": self.health.status(),
            "source": {k: last[k] for k in ("source_state", "stalled_since", "no_frames_s", "attempt", "attempts")
                       if k in last} or {"source_state": "ok"},
        }


class _Handler(BaseHTTPRequestHandler):
    sink: ViewerSink  # set on the per-server subclass
    server_version = "artcam-viewer"
    sys_version = ""

    def log_message(self, *args):  # the terminal belongs to the pipeline summary
        pass

    # -- connection slots: a request must arrive by a deadline, then it takes a slot (connections.py) ---
    def setup(self):
        super().setup()
        self._slot = False
        self.rfile = io.BufferedReader(DeadlineReader(self.connection, time.monotonic() + REQUEST_DEADLINE_S))

    def parse_request(self) -> bool:
        ok = super().parse_request()  # reads the headers (under the deadline)
        self.server.pending.arrived(self.connection)
        if ok and not self.server.take_slot():
            self.close_connection = True
            self._error(503, "this viewer is busy; try again", {"Retry-After": "1"})
            return False
        self._slot = ok
        return ok

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.pending.arrived(self.connection)
            if self._slot:
                self._slot = False
                self.server.release_slot()

    # -- helpers -----------------------------------------------------------------------------------
    def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj, allow_nan=False).encode(), "application/json", extra)

    def _error(self, code: int, message: str, extra: dict[str, str] | None = None) -> None:
        self._json(code, {"error": message}, extra)

    def _allowed(self, query: str) -> bool:
        """Token (or, tokenless on loopback, the Host header) checked before any route is looked at."""
        sink = self.sink
        if sink.token is None:
            if access.host_header_ok(self.headers.get("Host")):
                return True
            self._error(403, "this viewer answers only to localhost (start it with --token to serve other names)")
            return False
        if access.token_ok(sink.token, access.presented_token(self.headers, query)):
            return True
        self._error(401, "this viewer needs its token: open /?token=TOKEN or send 'Authorization: Bearer TOKEN'",
                    {"WWW-Authenticate": 'Bearer realm="artcam"'})
        return False

    def _body(self) -> Any:
        """The request's JSON body; None after answering an error."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":  # also keeps other web sites' plain form posts out
            self._error(415, "send the body as JSON with 'Content-Type: application/json'")
            return None
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.headers.get("Host", ""):
            self._error(403, f"cross-origin request from {origin} refused")
            return None
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._error(411, "a JSON body with a Content-Length is required")
            return None
        if int(length) > control.MAX_BODY_BYTES:
            self._error(413, f"the body is {length} bytes; at most {control.MAX_BODY_BYTES}")
            return None
        raw = self.rfile.read(int(length))
        try:
            return control.parse_json(raw)
        except ArtcamError as e:
            self._error(400, str(e))
            return None

    # -- routes ------------------------------------------------------------------------------------
    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":  # before the token check: monitors have no token, and it says one word
            status = self.sink.health.status()
            self._send(200 if status == "ok" else 503, status.encode(), "text/plain; charset=utf-8")
            return
        if not self._allowed(url.query):
            return
        route = url.path
        if route in ("/", "/index.html"):
            self._send(200, self.sink._page, "text/html; charset=utf-8",
                       {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                        "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'",
                        "Referrer-Policy": "no-referrer"})
        elif route == "/api/state":
            self._json(200, self.sink.state())
        elif route == "/snapshot.jpg":
            jpeg, _ = self.sink.wait_frame(0, timeout=2.0)
            if jpeg is None:
                self._error(503, "no frame yet")
                return
            name = time.strftime("artcam_%Y%m%d_%H%M%S.jpg")
            self._send(200, jpeg, "image/jpeg", {"Content-Disposition": f'inline; filename="{name}"'})
        elif route == "/stream.mjpg":
            self._stream()
        elif route in ("/api/style", "/api/strength", "/api/pause"):
            self._error(405, f"{route} takes POST", {"Allow": "POST"})
        else:
            self._error(404, f"no such page: {route}")

    def do_POST(self):
        url = urlsplit(self.path)
        if not self._allowed(url.query):
            return
        route = url.path
        if route not in ("/api/style", "/api/strength", "/api/pause"):
            if route in ("/", "/index.html", "/api/state", "/snapshot.jpg", "/stream.mjpg", "/healthz"):
                self._error(405, f"{route} takes GET", {"Allow": "GET"})
            else:
                self._error(404, f"no such page: {route}")
            return
        body = self._body()
        if body is None:
            return
        sink = self.sink
        try:
            if route == "/api/pause":
                sink.set_paused(control.pause_request(body, sink.want_paused))
            elif sink.processor is None:
                raise SinkError("this run has no stylizer to steer")
            elif route == "/api/style":
                sink.processor.request(style=control.style_request(body, sink.processor.settings()["styles"]),
                                       prefix="")
            else:
                sink.processor.request(strength=control.strength_request(body), prefix="")
        except ArtcamError as e:
            self._error(400, str(e))
            return
        self._json(200, sink.state())

    def _stream(self) -> None:
        sink = self.sink
        if not sink.open_stream():
            self._error(503, f"this viewer already serves {sink.max_clients} streams (--max-clients)",
                        {"Retry-After": "5"})
            return
        slow = False
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            seen = 0
            while True:
                jpeg, seq = sink.wait_frame(seen, timeout=IDLE_RESEND_S)
                if jpeg is None:
                    if sink._closed:
                        return
                    continue  # no first frame yet
                seen = seq
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
        except TimeoutError:  # the client did not take one frame in send_timeout_s: drop it
            slow = True
        except OSError:  # the client left (mid-frame or between frames)
            pass
        finally:
            sink.close_stream(slow)
            self.close_connection = True


def parse_http_spec(spec: str) -> tuple[str, int]:
    """``http://HOST:PORT`` (``http://:PORT`` and ``http://[::1]:PORT`` too) -> (host, port); host
    defaults to 127.0.0.1."""
    hostport = spec[len("http://"):].split("/")[0]
    host, _, port = hostport.rpartition(":")
    if not port.isdigit() or int(port) > 65535 or (host.startswith("[") != host.endswith("]")):
        raise SinkError(f"cannot parse {spec!r}", "use http://HOST:PORT, e.g. http://127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)
