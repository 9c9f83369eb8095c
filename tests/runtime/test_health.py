"""Health: the one word /healthz, `artcam live --json` and the systemd watchdog agree on.

The viewer tests run a real pipeline into a real ViewerSink on 127.0.0.1 (tests/viewer_harness.py) and
ask /healthz over HTTP; the CLI test runs `artcam live --json` as a process and reads its lines.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from viewer_harness import running_viewer, tiny_models, wait_for

from artcam.runtime import access
from artcam.runtime.errors import InputError, ModelError
from artcam.runtime.health import Health, HealthMonitor, HealthSink
from artcam.runtime.loading import load_model
from artcam.runtime.reconnect import SourceHealth
from artcam.runtime.sinks import NullSink
from artcam.runtime.viewer import ViewerSink

WORDS = {b"ok", b"starting", b"stalled", b"camera", b"model"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("health_models"))


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_status_follows_the_frames():
    clock = Clock()
    h = Health(stall_s=2.0, clock=clock)
    assert h.status() == "starting" and not h.alive
    h.frame()
    assert h.status() == "ok" and h.alive
    clock.t += 1.9
    assert h.status() == "ok"
    clock.t += 0.2
    assert h.status() == "stalled" and not h.alive
    assert h.report() == {"health": "stalled", "frames": 1, "since_last_frame_s": 2.1}
    h.frame()
    assert h.status() == "ok"
    with pytest.raises(ModelError), h.failing_as("model"):
        raise ModelError("broken")
    assert h.status() == "model" and not h.alive  # sticky
    h.frame()
    assert h.status() == "model"


@pytest.mark.parametrize("what, word", [("camera", "camera"), ("stream", "stalled")])
def test_status_reads_the_sources_reconnect_state(what, word):
    """The source's SourceHealth (reconnect.py) decides while it is being reopened: a camera is alive
    (the watchdog stays fed) for as long as the policy's attempts can take, a stream is a stall."""
    clock = Clock()
    src = SourceHealth(what, give_up_s=10.0)
    h = Health(stall_s=2.0, clock=clock, source=src)
    h.frame()
    assert h.status() == "ok" and h.report()["source_state"] == "ok"
    src.stalled()
    src.reconnecting(1, 3)
    clock.t += 5.0  # output frames stopped too: the source's word wins over the output's "stalled"
    assert h.status() == word and h.alive == (word == "camera")
    assert h.report()["source_state"] == "reconnecting"
    src.last_frame -= 13.0  # past the policy's worst case and a stall: an open that hangs is a stall
    assert h.status() == "stalled"
    src.frame()
    h.frame()
    assert h.status() == "ok" and src.reconnects == 1
    src.stalled()
    src.lost()  # attempts spent: the run is about to exit 2
    assert h.status() == "stalled" and not h.alive


def test_health_sink_counts_and_forwards():
    h = Health()
    inner = NullSink()
    sink = HealthSink(inner, h)
    sink.write(None, {})
    sink.write(None, {"status_only": True, "source_state": "missing"})  # a repeated frame: no sign of life
    assert inner.frames == 2 and h.report()["frames"] == 1 and sink.description == "null"
    assert sink.shows_status is False


def _healthz(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url + "healthz", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_healthz_on_loopback_ok_then_stalled(models):
    with running_viewer(models) as v:
        v.sink.health.stall_s = 1.0
        code, body, headers = _healthz(v.url)
        assert (code, body) == (200, b"ok") and headers["Content-Type"].startswith("text/plain")
        v.pipeline.stop()  # the source stops delivering: no frame reaches the viewer any more
        code, body, _ = wait_for(lambda: (r := _healthz(v.url))[0] == 503 and r, 10, "a 503")
        assert body == b"stalled"
        # a monitor on another name (no loopback Host) still gets the one word, and only that
        code, body, _ = _healthz(v.url, {"Host": "monitor.example"})
        assert (code, body) == (503, b"stalled")


def test_healthz_needs_no_token_and_reveals_nothing_else(models):
    """On a token-protected bind (what any non-loopback bind is): /healthz answers without the token,
    everything else is still 401."""
    with running_viewer(models, token="s3cret-token") as v:
        for token in (None, "wrong"):
            hdr = {"Authorization": f"Bearer {token}"} if token else {}
            code, body, headers = _healthz(v.url, hdr)
            assert (code, body) == (200, b"ok")
            assert not {k.lower() for k in headers} & {"set-cookie", "www-authenticate"}
            for route in ("/", "/api/state", "/snapshot.jpg", "/healthz/../api/state", "/healthzz"):
                assert v.request(route, token=token)[0] == 401, route
        assert v.state()["health"] == "ok"  # with the token, the page's state says it too
        assert v.request("/healthz", {"x": 1}, token=None)[0] == 401  # only GET is open


def test_generated_token_bind_still_answers_healthz(monkeypatch, capsys):
    """Off loopback without --token (a token generated): /healthz is open, /api/state is not.
    (Tests bind only 127.0.0.1, so with is_loopback patched it plays the LAN address.)"""
    monkeypatch.setattr(access, "is_loopback", lambda host: False)
    sink = ViewerSink("127.0.0.1", 0)
    try:
        assert sink.token and sink.token not in capsys.readouterr().out
        assert _healthz(sink.url)[:2] == (503, b"starting")
        sink.write(np.zeros((8, 8, 3), np.uint8), {})
        assert _healthz(sink.url, {"Host": "192.168.1.20:8080"})[:2] == (200, b"ok")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(sink.url + "api/state", timeout=10)
        assert e.value.code == 401
    finally:
        sink.close()


def test_healthz_says_model_when_the_model_failed(models, tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    sink = ViewerSink("127.0.0.1", 0, token="t")
    try:
        assert _healthz(sink.url)[:2] == (503, b"starting")  # no frame yet
        with pytest.raises((ModelError, InputError)), sink.health.failing_as("model"):
            load_model(bad, device="cpu")
        code, body, _ = _healthz(sink.url)
        assert (code, body) == (503, b"model") and body in WORDS
    finally:
        sink.close()


def test_monitor_prints_a_line_per_change():
    clock = Clock()
    h = Health(stall_s=1.0, clock=clock)
    out = io.StringIO()
    m = HealthMonitor(h, json_lines=True, every_s=1e9, out=out)
    m.check()
    h.frame()
    m.check()
    m.check()  # no change, no line
    clock.t += 5
    m.check()
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["health"] for x in lines] == ["starting", "ok", "stalled"]
    assert lines[2] == {"health": "stalled", "frames": 1, "since_last_frame_s": 5.0}


@pytest.mark.slow
def test_cli_live_json_health_lines(models, tmp_path):
    """`artcam live --json` as a supervisor reads it: health lines while running, the summary last."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ARTCAM_TOKEN": ""}
    env.pop("NOTIFY_SOCKET", None)
    cmd = [sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--source-size", "60x80",
           "--style-model", str(models[0]), "--device", "cpu", "--threads", "1", "-o", "null",
           "--duration-s", "3", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.strip().splitlines()]
    health = [r["health"] for r in rows if "health" in r]
    assert health[0] == "starting" and "ok" in health
    assert rows[-1]["frames"] > 0 and "latency_ms" in rows[-1]

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    cmd[cmd.index("--style-model") + 1] = str(bad)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["health"] == "model"
