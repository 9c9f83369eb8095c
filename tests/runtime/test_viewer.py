"""The web viewer over plain HTTP: control API, validation, token, client limits, slow clients, bad input.

Every server binds 127.0.0.1 on a free port and stops by itself (tests/viewer_harness.py); every
loop has a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from viewer_harness import STYLES, running_viewer, tiny_models, wait_for

from artcam.runtime import access
from artcam.runtime.errors import SinkError
from artcam.runtime.viewer import ViewerSink, parse_http_spec


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny_models(tmp_path_factory.mktemp("viewer_models"))


@pytest.fixture(scope="module")
def shared(models):
    """One running viewer for the tests that change nothing."""
    with running_viewer(models) as v:
        yield v


def test_state_describes_the_run(models):
    with running_viewer(models) as v:
        s = v.frames_after(2)
        assert s["model"] == "tiny_style + tiny_clf"
        assert s["styles"] == list(STYLES) and s["style_weights"] == [1.0, 0.0, 0.0] and s["strength"] == 1.0
        assert [p["head"] for p in s["predictions"]] == ["objects", "style"]
        assert len(s["predictions"][0]["top"]) == 3
        assert s["predictions_age_ms"] >= 0  # classified on its own thread: how old the result is
        st = s["stats"]
        assert st["fps"] > 0 and st["frames"] >= 2 and st["dropped"] >= 0
        assert set(st["latency_ms"]) == {"p50", "p90", "p99"} and st["latency_ms"]["p50"] > 0
        assert s["paused"] is False and s["token_required"] is False


def test_style_and_strength_change_the_next_frames(models):
    with running_viewer(models) as v:
        warm = v.snapshot().mean()
        code, body, _ = v.request("/api/style", {"name": "cool"})
        assert code == 200 and json.loads(body)["style_weights"] == [0.0, 0.0, 1.0]
        s = v.frames_after(2)
        assert s["style"] == "cool"
        cool = v.snapshot().mean()
        assert cool - warm > 30  # cool brightens, warm darkens: the picture changed, the model was not reloaded

        assert v.request("/api/style", {"index": 1})[0] == 200
        assert v.state()["style_weights"] == [0.0, 1.0, 0.0]
        code, body, _ = v.request("/api/style", {"blend": {"warm": 0.25, "cool": 0.75}})
        assert code == 200 and json.loads(body)["style_weights"] == [0.25, 0.0, 0.75]
        assert v.request("/api/style", {"blend": [0, 0, 1]})[0] == 200
        v.frames_after(2)
        assert abs(v.snapshot().mean() - cool) < 25

        code, body, _ = v.request("/api/strength", {"strength": 0})
        assert code == 200 and json.loads(body)["strength"] == 0.0
        v.frames_after(2)
        assert cool - v.snapshot().mean() > 20  # strength 0: the camera picture itself


@pytest.mark.parametrize("route,body,message", [
    ("/api/style", {"name": "nope"}, "unknown style 'nope'"),
    ("/api/style", {"index": 7}, "out of range"),
    ("/api/style", {"index": True}, "not a whole number"),
    ("/api/style", {"index": 0, "name": "warm"}, "exactly one"),
    ("/api/style", {}, "exactly one"),
    ("/api/style", {"name": "warm", "colour": 1}, "unknown field 'colour'"),
    ("/api/style", [1, 0, 0], "JSON object"),
    ("/api/style", {"blend": {"warm": -1}}, "negative"),
    ("/api/style", {"blend": {"warm": 11}}, "above 10"),
    ("/api/style", {"blend": [0, 0, 0]}, "all zero"),
    ("/api/style", {"blend": [1, 0]}, "have 2 values"),
    ("/api/style", {"blend": {"warm": "lots"}}, "not a number"),
    ("/api/style", {"blend": {"umber": 1}}, "unknown style 'umber'"),
    ("/api/style", b'{"blend": {"warm": NaN}}', "not a finite number"),
    ("/api/style", b'{"blend": [Infinity, 0, 0]}', "not a finite number"),
    ("/api/strength", {"strength": 1.5}, "outside 0..1"),
    ("/api/strength", {"strength": -0.1}, "outside 0..1"),
    ("/api/strength", {"strength": "high"}, "not a number"),
    ("/api/strength", b'{"strength": NaN}', "not a finite number"),
    ("/api/strength", {}, "with a strength"),
    ("/api/pause", {"paused": "yes"}, "not true or false"),
    ("/api/pause", b'{"paused": tru', "malformed JSON"),
    ("/api/style", b"\xff\xfe", "malformed JSON"),
])
def test_bad_requests_are_400_and_change_nothing(shared, route, body, message):
    before = shared.state()
    code, raw, _ = shared.request(route, body)
    assert code == 400, raw
    assert message in json.loads(raw)["error"]
    after = shared.state()
    for key in ("style_weights", "strength", "paused"):
        assert after[key] == before[key]


def test_routes_methods_and_bodies(models):
    with running_viewer(models) as v:
        assert v.request("/nope")[0] == 404
        assert v.request("/api/nope", {"x": 1})[0] == 404
        assert v.request("/api/style")[0] == 405  # GET on a POST route
        assert v.request("/api/state", {"x": 1})[0] == 405
        code, body, _ = v.request("/api/style", b"name=cool", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert code == 415  # a plain form post from another web site cannot steer the device
        code, _, _ = v.request("/api/style", {"name": "cool"}, headers={"Origin": "http://evil.example"})
        assert code == 403
        assert v.request("/api/style", b"{" + b" " * 20000 + b"}")[0] == 413
        assert v.state()["style_weights"] == [1.0, 0.0, 0.0]
        code, page, headers = v.request("/")
        assert code == 200 and b'id="stream"' in page and headers["Content-Type"].startswith("text/html")
        assert b"http://" not in page and b"https://" not in page  # nothing from other sites


def test_pause_and_resume(models):
    with running_viewer(models) as v:
        code, body, _ = v.request("/api/pause", {"paused": True})
        assert code == 200 and json.loads(body)["paused"] is True
        wait_for(lambda: v.pipeline._resume.is_set() is False, 10, "the pipeline to pause")
        frozen = v.state()["stats"]["frames"]
        time.sleep(0.5)
        assert v.state()["stats"]["frames"] == frozen
        assert v.request("/snapshot.jpg")[0] == 200  # the frozen frame
        assert json.loads(v.request("/api/pause", {})[1])["paused"] is False  # {} toggles
        v.frames_after(2)


def _stream_parts(url: str, n: int, headers: dict | None = None, timeout: float = 10.0) -> list[bytes]:
    """The first ``n`` JPEGs of an MJPEG stream."""
    req = urllib.request.Request(url, headers=headers or {})
    parts = []
    with urllib.request.urlopen(req, timeout=timeout) as r:
        assert "multipart/x-mixed-replace" in r.headers["Content-Type"]
        while len(parts) < n:
            line = r.readline()
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                r.readline()
                parts.append(r.read(length))
    return parts


def test_stream_sends_new_frames(shared):
    parts = _stream_parts(shared.url + "stream.mjpg", 4)
    assert all(p[:2] == b"\xff\xd8" for p in parts)
    assert len(set(parts)) >= 3  # the picture moves


def test_token_is_required_on_every_route(models):
    with running_viewer(models, token="s3cret-token") as v:
        for route in ("/", "/api/state", "/snapshot.jpg", "/stream.mjpg", "/favicon.ico", "/nope"):
            for token in (None, "wrong", "s3cret-token-and-more", "sécret"):
                code, body, headers = v.request(route, token=token)
                assert code == 401, (route, token)
                assert b"\xff\xd8" not in body and b"styles" not in body  # nothing leaks, not even a snapshot
                assert headers.get("WWW-Authenticate", "").startswith("Bearer")
        code, body, _ = v.request("/api/style", {"name": "cool"}, token=None)
        assert code == 401
        assert v.state()["style_weights"] == [1.0, 0.0, 0.0]  # refused means nothing changed
        assert v.state()["token_required"] is True
        assert v.request("/snapshot.jpg")[0] == 200  # Authorization: Bearer
        code, _, _ = v.request("/snapshot.jpg?token=s3cret-token", token=None)  # ?token= (an <img>, a phone)
        assert code == 200
        assert len(_stream_parts(v.url + "stream.mjpg?token=s3cret-token", 1)) == 1


def test_tokenless_loopback_answers_only_to_loopback_names(shared):
    code, body, _ = shared.request("/snapshot.jpg", headers={"Host": "rebound.example:80"})
    assert code == 403 and b"\xff\xd8" not in body
    assert shared.request("/api/state", headers={"Host": f"localhost:{shared.sink.port}"})[0] == 200


def test_safe_defaults():
    assert access.resolve_token("127.0.0.1", None) == (None, False)
    assert access.resolve_token("localhost", None) == (None, False)
    assert access.resolve_token("::1", None) == (None, False)
    for host in ("0.0.0.0", "::", "192.168.1.20", "jetson.local"):
        token, generated = access.resolve_token(host, None)
        assert generated and len(token) >= 20
    assert access.resolve_token("127.0.0.1", "given") == ("given", False)  # a given token is always required
    assert access.resolve_token("0.0.0.0", None)[0] != access.resolve_token("0.0.0.0", None)[0]
    assert parse_http_spec("http://:8090") == ("127.0.0.1", 8090)
    assert parse_http_spec("http://[::1]:8090/") == ("::1", 8090)
    with pytest.raises(SinkError, match="cannot parse"):
        parse_http_spec("http://127.0.0.1")


def test_generated_token_is_printed_once_and_required(monkeypatch, capsys):
    """Off loopback without --token: a fresh token, printed once in the address to open. (Tests bind only
    127.0.0.1, so 127.0.0.1 plays the LAN address here.)"""
    monkeypatch.setattr(access, "is_loopback", lambda host: False)
    sink = ViewerSink("127.0.0.1", 0)
    try:
        err = capsys.readouterr().err
        m = re.search(r"viewer at http://127\.0\.0\.1:(\d+)/\?token=(\S+) ", err)
        assert m and int(m.group(1)) == sink.port and err.count(m.group(2)) == 1
        assert m.group(2) not in sink.description
        url = f"http://127.0.0.1:{sink.port}/api/state"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url, timeout=10)
        assert e.value.code == 401
        assert urllib.request.urlopen(f"{url}?token={m.group(2)}", timeout=10).status == 200
    finally:
        sink.close()


def test_extra_clients_get_503(models):
    with running_viewer(models, max_clients=2) as v:
        url = v.url + "stream.mjpg"
        streams = [urllib.request.urlopen(url, timeout=10) for _ in range(2)]
        try:
            for r in streams:
                assert r.readline().startswith(b"--frame")
            wait_for(lambda: v.state()["stats"]["clients"] == 2, 10, "two streams")
            code, body, headers = v.request("/stream.mjpg")
            assert code == 503 and b"2 streams" in body and headers.get("Retry-After")
            assert v.request("/api/state")[0] == 200  # the API still answers
        finally:
            streams[0].close()
        wait_for(lambda: v.state()["stats"]["clients"] == 1, 10, "the closed stream to free its slot")
        assert len(_stream_parts(url, 1)) == 1  # a freed slot serves again
        streams[1].close()
        assert v.state()["stats"]["clients_refused"] == 1


def test_slow_client_is_dropped_without_stalling_the_pipeline_or_others(models):
    timeout_s = 3.0
    # big noisy frames (hundreds of KB each) so a client that stops reading fills the socket buffers at once
    with running_viewer(models, send_timeout_s=timeout_s, size=(480, 640), fps=8) as v:
        writes, real_write = [], v.sink.write

        def noisy_write(frame, info):
            t = time.perf_counter()
            try:
                return real_write(np.random.default_rng(len(writes)).integers(0, 255, frame.shape, np.uint8), info)
            finally:
                writes.append(time.perf_counter() - t)

        v.sink.write = noisy_write
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", v.sink.port))
        slow.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # ... and never reads
        fast: list[bytes] = []
        stop = threading.Event()

        def read_fast():
            with urllib.request.urlopen(v.url + "stream.mjpg", timeout=10) as r:
                while not stop.is_set():
                    line = r.readline()
                    if line.lower().startswith(b"content-length:"):
                        r.readline()
                        fast.append(r.read(int(line.split(b":")[1]))[:2])

        reader = threading.Thread(target=read_fast, daemon=True)
        reader.start()
        try:
            wait_for(lambda: v.state()["stats"]["clients"] == 2, 10, "both streams")
            wait_for(lambda: len(fast) >= 3, 20, "frames for the fast client")
            stuck = v.state()["stats"]
            assert stuck["slow_clients_dropped"] == 0 and stuck["clients"] == 2  # served while the slow one hung
            wait_for(lambda: v.state()["stats"]["slow_clients_dropped"] == 1, 20, "the slow client to be dropped")
            assert v.state()["stats"]["clients"] == 1
            n = len(fast)
            wait_for(lambda: len(fast) >= n + 3, 20, "the fast client to keep receiving")
        finally:
            stop.set()
            reader.join(timeout=10)
            slow.close()
        assert all(p == b"\xff\xd8" for p in fast)
        # write() only encodes and publishes: had it waited for the stuck client it would have taken the send timeout
        assert max(writes) < timeout_s


def test_client_leaving_mid_frame(models):
    with running_viewer(models) as v:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", v.sink.port), timeout=10)
            s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while b"\r\n\r\n--frame" not in data and len(data) < 400:
                data += s.recv(64)
            s.close()  # in the middle of a JPEG
        wait_for(lambda: v.state()["stats"]["clients"] == 0, 15, "the streams to close")
        assert v.state()["stats"]["slow_clients_dropped"] == 0
        assert v.request("/snapshot.jpg")[0] == 200


def test_port_in_use_is_one_line_naming_it():
    first = ViewerSink("127.0.0.1", 0)
    try:
        with pytest.raises(SinkError) as e:
            ViewerSink("127.0.0.1", first.port)
        msg = str(e.value)
        assert f"127.0.0.1:{first.port}" in msg and "\n" not in msg and "pick another" in msg
    finally:
        first.close()


@pytest.mark.slow
def test_cli_live_viewer_with_token(models, tmp_path):
    """`artcam live -o http://127.0.0.1:0 --token T` as a user runs it: the page, 401 without the token."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ARTCAM_TOKEN": ""}
    cmd = [sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--source-size", "120x160",
           "--style-model", str(models[0]), "--device", "cpu", "--threads", "1", "-o", "http://127.0.0.1:0",
           "--token", "cli-token", "--duration-s", "60"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        m = wait_for(lambda: next((re.search(r"web viewer (http://127\.0\.0\.1:\d+/) \(token required\)", ln)
                                   for ln in lines if "web viewer" in ln), None), 60, "the viewer's address")
        url = m.group(1)
        assert not any("cli-token" in ln for ln in lines)  # a given token is not printed
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url + "api/state", timeout=10)
        assert e.value.code == 401
        req = urllib.request.Request(url + "api/state", headers={"Authorization": "Bearer cli-token"})
        state = json.loads(urllib.request.urlopen(req, timeout=10).read())
        assert state["styles"] == list(STYLES)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_stream_delay_benchmark_runs_and_every_frame_arrives_in_order(capsys):
    """The benchmark behind the README's stream-delay line: a real sink and a real client (no timing asserted)."""
    from artcam.benchmarks.viewer_delay import main

    assert main(["--frames", "30", "--fps", "30"]) == 0
    out = capsys.readouterr().out
    received = int(out.split(" frames received")[0].split()[-1])
    assert received >= 10 and "frames behind the newest at receipt" in out
