"""A real web viewer on 127.0.0.1 for the viewer tests: the live pipeline (the `sample` camera stand-in,
a tiny stylizer with three colour-shift styles, a tiny classifier) running in a thread into a
``ViewerSink`` on a free port. Bounded: the pipeline stops by itself after ``max_s`` seconds even
if a test forgets to stop it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tiny_models as tm

from artcam.runtime.loading import load_model
from artcam.runtime.pipeline import FrameProcessor, Pipeline
from artcam.runtime.sources import SampleSource
from artcam.runtime.tasks import Classifier, Stylizer
from artcam.runtime.viewer import ViewerSink

# the tiny stylizer adds a per-style colour shift: warm darkens, cool brightens (by ~0.45 of full scale)
STYLES = ("warm", "mid", "cool")


def tiny_models(folder: Path) -> tuple[Path, Path]:
    return (tm.stylizer(folder / "tiny_style.onnx", styles=STYLES),
            tm.classifier(folder / "tiny_clf.onnx"))


@dataclass
class Running:
    sink: ViewerSink
    processor: FrameProcessor
    pipeline: Pipeline
    token: str | None

    @property
    def url(self) -> str:
        return self.sink.url

    def request(self, path: str, body=None, *, token: str | None = "default", headers: dict | None = None,
                timeout: float = 10.0) -> tuple[int, bytes, dict]:
        """(status, body, headers) of one request; ``body`` (not bytes) is sent as JSON."""
        token = self.token if token == "default" else token
        h = dict(headers or {})
        if token:
            h.setdefault("Authorization", f"Bearer {token}")
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path.lstrip("/"), data=data, headers=h,
                                     method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def state(self) -> dict:
        code, body, _ = self.request("/api/state")
        assert code == 200, body
        return json.loads(body)

    def snapshot(self) -> np.ndarray:
        code, body, _ = self.request("/snapshot.jpg")
        assert code == 200, body
        return cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)

    def frames_after(self, n: int, timeout: float = 20.0) -> dict:
        """The state once ``n`` more frames went out (so a change made now is in the picture)."""
        start = self.state()["stats"]["frames"]
        return wait_for(lambda: (s := self.state())["stats"]["frames"] >= start + n and s, timeout,
                        f"{n} more frames")


def wait_for(cond, timeout: float = 20.0, what: str = "the condition"):
    """Poll ``cond()`` until it is truthy (returned) or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def running_viewer(models: tuple[Path, Path], *, token: str | None = None, max_clients: int = 4,
                   send_timeout_s: float = 5.0, size=(120, 160), fps: float = 10.0, max_s: float = 120.0):
    st = Stylizer(load_model(models[0], device="cpu", threads=1))
    cl = Classifier(load_model(models[1], device="cpu", threads=1))
    processor = FrameProcessor(st, cl)
    sink = ViewerSink("127.0.0.1", 0, token=token, max_clients=max_clients, send_timeout_s=send_timeout_s)
    sink.attach(processor, "tiny_style + tiny_clf")
    pipeline = Pipeline(SampleSource(size=size, fps=fps), processor, sink)
    errors: list[BaseException] = []

    def run():
        try:
            pipeline.run(duration_s=max_s)
        except BaseException as e:  # surfaced below
            errors.append(e)

    thread = threading.Thread(target=run, name="viewer-test-pipeline", daemon=True)
    thread.start()
    running = Running(sink, processor, pipeline, token)
    try:
        wait_for(lambda: sink.frames > 0, 30.0, "the first frame")
        yield running
    finally:
        pipeline.stop()
        thread.join(timeout=10.0)
        sink.close()
        processor.close()
    assert not thread.is_alive(), "the pipeline did not stop"
    assert not errors, errors
