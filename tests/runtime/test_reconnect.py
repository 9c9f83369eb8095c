"""Camera loss: a source that fails for a few seconds and comes back is reopened; the run goes on.

In-process with real sources behind a flaky opener, and as one `artcam live` process whose folder
source empties (every picture gone: the source ends and cannot be reopened) and fills again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
import tiny_models as tm
from viewer_harness import wait_for

from artcam.runtime.errors import SourceError
from artcam.runtime.health import Health
from artcam.runtime.reconnect import NO_CAMERA, Reconnecting, is_local_camera
from artcam.runtime.sources import SampleSource


def test_reopens_after_failures_and_resumes_frames():
    health = Health(stall_s=2.0)
    gone_until = [0.0]
    opened = []

    def opener():
        if time.monotonic() < gone_until[0]:
            raise SourceError("camera 0 does not exist")
        src = SampleSource(size=(24, 32), frames=5, live=False)
        opened.append(src)
        return src

    src = Reconnecting(opener, health=health, first_backoff_s=0.05, max_backoff_s=0.2, beat_s=0.05)
    frames, states = 0, []
    t0 = time.monotonic()
    for _frame, _t in src:
        frames += 1
        health.frame()
        if frames == 5:  # the first source ended (unplugged): stay gone for one second
            gone_until[0] = time.monotonic() + 1.0
        states.append((src.state, health.status()))
        if frames == 12:
            break
    src.close()
    assert time.monotonic() - t0 >= 1.0  # it waited the camera out, in one loop
    assert src.reconnects == 2 and len(opened) == 3  # 5 + 5 frames, then the third source
    assert states[-1] == ("ok", "ok")
    assert src.inner is None and all(s.live is False for s in opened)


def test_health_says_camera_while_it_is_gone():
    health = Health(stall_s=0.5)
    src = Reconnecting(lambda: (_ for _ in ()).throw(SourceError("gone")),
                       SampleSource(size=(24, 32), frames=1, live=False), health=health,
                       first_backoff_s=2.0, beat_s=0.05)
    it = iter(src)
    next(it)
    health.frame()
    done = threading.Event()
    threading.Thread(target=lambda: (next(it, None), done.set()), daemon=True).start()
    wait_for(lambda: src.state == NO_CAMERA, 5, "no camera")
    time.sleep(1.0)  # longer than stall_s: the beats keep it "camera", not "stalled"
    assert health.status() == "camera" and health.alive
    src.close()  # a stop during the backoff ends the iteration at once
    assert done.wait(2.0)


def test_which_sources_are_cameras():
    assert is_local_camera("0") and is_local_camera("/dev/video2") and is_local_camera("csi://0")
    assert not any(is_local_camera(s) for s in ("sample", "rtsp://x/y", "clip.mp4", "photos/"))


@pytest.mark.slow
def test_one_live_process_survives_a_camera_gone_for_seconds(tmp_path):
    style = tm.stylizer(tmp_path / "tiny_style.onnx")
    cam, away = tmp_path / "cam", tmp_path / "away"
    cam.mkdir()
    away.mkdir()
    for i in range(3):
        img = np.full((48, 64, 3), 60 * i, np.uint8)
        cv2.imwrite(str(cam / f"f{i}.png"), img)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ARTCAM_TOKEN": ""}
    env.pop("NOTIFY_SOCKET", None)
    cmd = [sys.executable, "-m", "artcam.runtime.cli", "live", "--source", str(cam), "--loop", "--reconnect",
           "--style-model", str(style), "--device", "cpu", "--threads", "1", "-o", "http://127.0.0.1:0",
           "--stall-s", "2", "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[dict] = []
    err: list[str] = []
    threading.Thread(target=lambda: out.extend(json.loads(x) for x in iter(proc.stdout.readline, "")),
                     daemon=True).start()
    threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")), daemon=True).start()

    def healthz():
        m = next(re.search(r"web viewer (http://127\.0\.0\.1:\d+/)", ln) for ln in err if "web viewer" in ln)
        try:
            return urllib.request.urlopen(m.group(1) + "healthz", timeout=5).read()
        except urllib.error.HTTPError as e:
            return e.read()

    try:
        wait_for(lambda: any(r.get("health") == "ok" for r in out), 60, "frames flowing")
        for f in cam.iterdir():  # the camera is unplugged
            shutil.move(str(f), away / f.name)
        wait_for(lambda: out[-1].get("health") == "camera", 20, "health 'camera'")
        assert healthz() == b"camera"
        frames_gone = out[-1]["frames"]
        time.sleep(3.0)  # gone for a few seconds
        assert proc.poll() is None and out[-1]["health"] == "camera"
        for f in away.iterdir():  # ... and plugged in again
            shutil.move(str(f), cam / f.name)
        wait_for(lambda: out[-1].get("health") == "ok", 20, "health 'ok' again")
        wait_for(lambda: healthz() == b"ok", 10, "/healthz ok")
        assert proc.poll() is None
        assert any("no camera" in ln for ln in err) and any("back after" in ln for ln in err)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        time.sleep(0.2)
        assert out[-1]["frames"] > frames_gone  # the summary: frames resumed in the same process
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
