"""A real MJPEG-over-HTTP camera on 127.0.0.1 that a test can freeze, unplug and plug in again.

OpenCV opens it through FFmpeg like any network camera, so the runtime's reconnect mechanism
(``runtime/reconnect.py``: stall timeout, reopen attempts, ``SourceHealth``) runs for real:

* ``flowing.clear()``: frozen, the connection stays open and no frame comes (a hung camera or stream);
  ``freeze_after=N`` freezes it by itself after N frames, and ``thaw_on_reconnect`` lets the next
  connection after that stream again (a camera that recovers when it is reopened);
* ``unplug()``: the streams end and new connections get 503 (the device is gone), ``plug()`` undoes it.

``connections`` counts the opens (the first, then one per reopening).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


class LoopbackCamera:
    def __init__(self, size: tuple[int, int] = (48, 64), fps: float = 15.0, *, freeze_after: int | None = None,
                 thaw_on_reconnect: bool = False):
        self.flowing, self.released, self.unplugged = threading.Event(), threading.Event(), threading.Event()
        self.flowing.set()
        self.connections = 0
        self.sent = 0
        self.froze = False
        img = np.zeros((*size, 3), np.uint8)
        cv2.rectangle(img, (10, 10), (40, 30), (0, 200, 255), -1)
        jpeg = cv2.imencode(".jpg", img)[1].tobytes()
        cam = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                cam.connections += 1
                if thaw_on_reconnect and cam.froze:
                    cam.flowing.set()
                if cam.unplugged.is_set():
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not (cam.released.is_set() or cam.unplugged.is_set()):
                        if not cam.flowing.is_set():
                            cam.released.wait(0.1)
                            continue
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        cam.sent += 1
                        if freeze_after is not None and cam.sent >= freeze_after and not cam.froze:
                            cam.froze = True
                            cam.flowing.clear()
                        time.sleep(1 / fps)
                except OSError:
                    pass
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def unplug(self) -> None:
        self.unplugged.set()

    def plug(self) -> None:
        self.unplugged.clear()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
