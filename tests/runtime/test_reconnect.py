"""Camera loss: a source that fails for a few seconds and comes back is reopened; the run goes on.

One mechanism (``runtime/reconnect.py``) for cameras and streams: ``CaptureSource`` notices the stall,
reopens under the ``--reconnect`` policy and keeps its ``SourceHealth``, which ``health.Health`` reads
(``camera`` for a camera being reopened, ``stalled`` for a stream). The source is a real MJPEG camera
on loopback (tests/loopback_camera.py) that is unplugged (its stream ends, opens get 503) for a few
seconds and plugged in again: in-process as a camera, and as one `artcam live` process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import cv2
import pytest
import tiny_models as tm
from loopback_camera import LoopbackCamera
from viewer_harness import wait_for

from artcam.runtime.health import Health
from artcam.runtime.reconnect import parse_policy
from artcam.runtime.sources import CaptureSource

pytestmark = pytest.mark.reliability


def test_a_camera_gone_for_seconds_is_reopened_and_health_says_camera():
    camera = LoopbackCamera()
    policy = parse_policy("stall=0.5,attempts=20,backoff=0.2,max-backoff=0.5")
    src = CaptureSource(camera.url, [(cv2.CAP_FFMPEG, "FFmpeg")], live=True, reconnect=True, policy=policy,
                        what="camera", description="camera on loopback")
    health = Health(stall_s=policy.stall_s, source=src.health)
    frames = [0]

    def consume():  # the pipeline's part: every frame that comes out counts for the health
        for _frame, _t in src:
            frames[0] += 1
            health.frame()

    worker = threading.Thread(target=consume, daemon=True)
    worker.start()
    try:
        wait_for(lambda: frames[0] >= 5 and health.status() == "ok", 20, "frames flowing")
        camera.unplug()
        wait_for(lambda: health.status() == "camera", 10, "health 'camera'")
        gone_at = frames[0]
        time.sleep(2.5)  # gone for a few seconds, longer than the stall: still 'camera', still alive
        assert health.status() == "camera" and health.alive and worker.is_alive()
        assert src.health.as_dict()["source_state"] == "reconnecting" and frames[0] == gone_at
        camera.plug()
        wait_for(lambda: frames[0] > gone_at + 5 and health.status() == "ok", 20, "frames again")
        d = src.health.as_dict()
        assert d["source_state"] == "ok" and d["stalls"] == 1 and d["reconnects"] == 1
        assert src.reconnects >= 1 and worker.is_alive()  # the same source object, in the same thread
        camera.unplug()  # gone again: close() during the reopening ends the iteration at once
        wait_for(lambda: src.health.as_dict()["source_state"] == "reconnecting", 10, "reconnecting again")
        src.close()
        worker.join(timeout=2)
        assert not worker.is_alive()
    finally:
        src.close()
        camera.close()


@pytest.mark.slow
def test_one_live_process_survives_a_source_gone_for_seconds(tmp_path):
    """`artcam live` on the loopback camera, unplugged for 3 s: the process lives on, /healthz and the
    --json lines say so (a network source: 'stalled'), and frames resume in the same process."""
    style = tm.stylizer(tmp_path / "tiny_style.onnx")
    camera = LoopbackCamera()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ARTCAM_TOKEN": ""}
    env.pop("NOTIFY_SOCKET", None)
    cmd = [sys.executable, "-m", "artcam.runtime.cli", "live", "--source", camera.url,
           "--style-model", str(style), "--device", "cpu", "--threads", "1", "-o", "http://127.0.0.1:0",
           "--reconnect", "stall=1,attempts=20,backoff=0.5,max-backoff=1", "--json"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[dict] = []
    err: list[str] = []
    threading.Thread(target=lambda: out.extend(json.loads(x) for x in iter(proc.stdout.readline, "")),
                     daemon=True).start()
    threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")), daemon=True).start()

    def get(path):
        m = next(re.search(r"web viewer (http://127\.0\.0\.1:\d+/)", ln) for ln in err if "web viewer" in ln)
        try:
            return urllib.request.urlopen(m.group(1) + path, timeout=5).read()
        except urllib.error.HTTPError as e:
            return e.read()

    try:
        wait_for(lambda: any(r.get("health") == "ok" for r in out), 60, "frames flowing")
        camera.unplug()
        wait_for(lambda: out[-1].get("health") == "stalled", 20, "health 'stalled'")
        assert get("healthz") == b"stalled"
        frames_gone = out[-1]["frames"]
        time.sleep(3.0)  # gone for a few seconds
        assert proc.poll() is None and out[-1]["health"] == "stalled"
        assert out[-1]["source_state"] in ("stalled", "reconnecting")
        assert json.loads(get("api/state"))["source"]["source_state"] in ("stalled", "reconnecting")
        camera.plug()
        wait_for(lambda: out[-1].get("health") == "ok", 20, "health 'ok' again")
        wait_for(lambda: get("healthz") == b"ok", 10, "/healthz ok")
        assert proc.poll() is None
        assert any("reopening the stream" in ln for ln in err)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        time.sleep(0.2)
        summary = out[-1]  # frames resumed in the same process, after one stall and one reconnect
        assert summary["frames"] > frames_gone and summary["stalls"] == 1 and summary["reconnects"] == 1
    finally:
        camera.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
