"""`artcam serve` behind a real Triton Inference Server (pytriton's bundled server) on loopback.

Real frames over HTTP and gRPC must give the local runtime's answers: the same pixels within rounding
for the shipped stylizer, the same top-k for the shipped classifier. A model that fails to load, a
request of the wrong shape or dtype and a server that dies mid-stream each give a clear error.
Skipped (with the reason) without the serve extra.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip("pytriton", reason="the serve extra is not installed (pip install 'artcam[serve]')")
pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed (the serve extra)")
pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed (the serve extra)")

import tritonclient.grpc as tg  # noqa: E402
import tritonclient.http as th  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from artcam.runtime.backends.remote import RemoteError, RemoteModel  # noqa: E402
from artcam.runtime.errors import InputError  # noqa: E402
from artcam.runtime.loading import load_model  # noqa: E402
from artcam.runtime.remote_tasks import RemoteClassifier, RemoteStylizer  # noqa: E402
from artcam.runtime.sources import SampleSource  # noqa: E402
from artcam.runtime.tasks import Classifier, Stylizer  # noqa: E402
from artcam.serving.launch import ServerProcess  # noqa: E402

pytestmark = [pytest.mark.serve, pytest.mark.slow]

STYLIZER, CLASSIFIER = "stylizer_nano", "classifier_lite0"


@pytest.fixture(scope="module")
def server():
    """One server for the module: both shipped models, ready within 3 minutes, gone after 15."""
    with ServerProcess([STYLIZER, CLASSIFIER], "--threads", "1", "--top-k", "5",
                       start_timeout_s=180, duration_s=900) as srv:
        yield srv


@pytest.fixture(scope="module")
def frames():
    src = SampleSource(size=(480, 640), live=False)
    return [src.frame_at(i).copy() for i in (0, 45, 300)]


@pytest.fixture(scope="module")
def local():
    st = Stylizer(load_model(STYLIZER, device="cpu", threads=1))
    clf = Classifier(load_model(CLASSIFIER, device="cpu", threads=1), top_k=5)
    yield st, clf
    st.close()
    clf.close()


def _clients(srv):
    return [("http", th, th.InferenceServerClient(f"127.0.0.1:{srv.http_port}")),
            ("grpc", tg, tg.InferenceServerClient(f"127.0.0.1:{srv.grpc_port}"))]


def _image_input(mod, frame):
    x = mod.InferInput("image", [1, *frame.shape], "UINT8")
    x.set_data_from_numpy(frame[None])
    return x


def _jpeg_input(mod, frame):
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    x = mod.InferInput("jpeg", [1, 1], "BYTES")
    x.set_data_from_numpy(np.array([[buf.tobytes()]], dtype=object))
    return x, cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _assert_same_picture(got, want):
    assert got.shape == want.shape and got.dtype == np.uint8
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 2, f"max pixel difference {diff.max()}"  # float rounding in a batch of 1 vs 1
    assert (diff > 0).mean() < 0.01


def test_stylizer_http_and_grpc_match_the_local_runtime(server, frames, local):
    st, _ = local
    for proto, mod, client in _clients(server):
        for style in ("starry_night", "3", "udnie:0.6,mondrian:0.4"):
            st.set_style(style)
            want = st.stylize(frames[0]).copy()
            res = client.infer(STYLIZER, [_image_input(mod, frames[0])], parameters={"style": style})
            _assert_same_picture(res.as_numpy("image")[0], want)
            assert res.as_numpy("server_ms")[0, 0] > 0
        # JPEG bytes in: the server decodes them exactly as the local runtime would
        x, decoded = _jpeg_input(mod, frames[1])
        st.set_style(0)
        want = st.stylize(decoded).copy()
        _assert_same_picture(client.infer(STYLIZER, [x]).as_numpy("image")[0], want)


def test_classifier_http_and_grpc_give_the_local_top_k(server, frames, local):
    _, clf = local
    for proto, mod, client in _clients(server):
        for f in frames:
            want = clf.classify(f)
            res = client.infer(CLASSIFIER, [_image_input(mod, f)], parameters={"top_k": 5})
            for p in want:
                labels = [b.decode() for b in res.as_numpy(f"{p.head}_labels")[0]]
                probs = res.as_numpy(f"{p.head}_probs")[0]
                assert labels == p.labels, (proto, p.head)
                np.testing.assert_allclose(probs, p.probs, rtol=1e-3, atol=1e-5)


def test_remote_tasks_stand_in_for_local_ones(server, frames, local):
    st, clf = local
    rs = RemoteStylizer(server.grpc_url, STYLIZER, style="great_wave")
    rc = RemoteClassifier(server.http_url, CLASSIFIER, top_k=3)
    try:
        assert rs.styles == list(st.styles) and rs.style_name == "great_wave"
        st.set_style("great_wave")
        _assert_same_picture(rs.stylize(frames[2]), st.stylize(frames[2]))
        assert set(rs.timing) == {"pre", "infer", "post"}
        assert rs.last_split["server"] > 0 and rs.timing["infer"] >= rs.last_split["server"]
        got, want = rc.classify(frames[2]), clf.classify(frames[2])
        assert [(p.head, p.labels) for p in got] == [(p.head, p.labels[:3]) for p in want]
        rs.step_style(1)
        assert rs.style_name == st.styles[(st.styles.index("great_wave") + 1) % len(st.styles)]
    finally:
        rs.close()
        rc.close()


def test_live_remote_runs_the_pipeline_against_the_server(server):
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--source-size",
                        "120x160", "--remote", server.grpc_url, "--classify", "--frames", "6", "-o", "null",
                        "--json"], capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["frames"] == 6
    assert "server" in p.stderr and "network" in p.stderr  # the round trip split, one line per model
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--source-size",
                        "120x160", "--remote", server.http_url + "?encoding=jpeg", "--style", "udnie", "--strength",
                        "0.5", "--preserve-color", "--frames", "3", "-o", "null", "--json"],
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--remote",
                        server.grpc_url, "--size", "320", "--frames", "3", "-o", "null"],
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 2 and "--size does not apply with --remote" in p.stderr


def test_wrong_dtype_or_shape_is_a_clear_error(server, frames):
    for proto, mod, client in _clients(server):
        x = mod.InferInput("image", [1, 480, 640, 3], "FP32")
        x.set_data_from_numpy(frames[0][None].astype(np.float32))
        with pytest.raises(InferenceServerException, match=r"(?i)data ?type|dtype|FP32"):
            client.infer(STYLIZER, [x])
        x = mod.InferInput("image", [1, 480, 640, 4], "UINT8")
        x.set_data_from_numpy(np.zeros((1, 480, 640, 4), np.uint8))
        with pytest.raises(InferenceServerException, match=r"(?i)shape|dims"):
            client.infer(STYLIZER, [x])
        x = mod.InferInput("jpeg", [1, 1], "BYTES")
        x.set_data_from_numpy(np.array([[b"not a jpeg"]], dtype=object))
        with pytest.raises(InferenceServerException, match="not a decodable image"):
            client.infer(CLASSIFIER, [x])
    # the client checks what it can before sending
    rm = RemoteModel(server.grpc_url, STYLIZER, "stylize")
    with pytest.raises(InputError, match="HxWx3 uint8"):
        rm.infer(frames[0].astype(np.float32), None, ["image"])
    with pytest.raises(RemoteError, match="unknown style 'no_such_style'") as e:
        rm.infer(frames[0], {"style": "no_such_style"}, ["image"])
    assert "Traceback" not in str(e.value)  # the model's one line, not pytriton's traceback
    with pytest.raises(RemoteError, match="smaller than this model allows"):
        rm.infer(np.zeros((8, 8, 3), np.uint8), None, ["image"])
    # bad requests leave the model serving
    res, timing = rm.infer(frames[0], None, ["image"])
    assert res.as_numpy("image").shape == (1, 480, 640, 3) and timing["server"] > 0
    rm.close()


def test_a_model_the_server_does_not_have_is_a_clear_error(server):
    with pytest.raises(RemoteError, match="does not serve model 'generator_art64'") as e:
        RemoteStylizer(server.grpc_url, "generator_art64")
    assert "stylizer_nano" in str(e.value)
    with pytest.raises(RemoteError, match="is a classify model"):
        RemoteStylizer(server.http_url, CLASSIFIER)


def test_a_model_that_fails_to_load_stops_serve_with_one_line(tmp_path):
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"garbage" * 10)
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "serve", str(bad), "--duration-s", "5"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "not a valid ONNX model" in p.stderr and "Traceback" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "serve", "generator_art64", "--duration-s", "5"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "is a generate model" in p.stderr
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "serve", STYLIZER, "--host", "0.0.0.0"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "--allow-network" in p.stderr


def test_no_server_and_a_server_that_dies_mid_stream(frames):
    with ServerProcess([STYLIZER], "--threads", "1", start_timeout_s=180, duration_s=300) as srv:
        url = srv.grpc_url
        clients = [RemoteStylizer(srv.grpc_url, STYLIZER, timeout_s=10), RemoteStylizer(srv.http_url, STYLIZER,
                                                                                      timeout_s=10)]
        for rs in clients:
            for f in frames:
                rs.stylize(f)
        srv.kill()
        for rs in clients:
            with pytest.raises(RemoteError, match="lost the server|cannot reach") as e:
                for _ in range(3):  # the next frame must fail clearly (a retry inside the client is fine)
                    rs.stylize(frames[0])
            assert "artcam serve" in str(e.value)
            rs.close()
    # nothing listening there any more: connecting is a clear error, and so is `artcam live`
    with pytest.raises(RemoteError, match="cannot reach|lost"):
        RemoteStylizer(url, STYLIZER, timeout_s=5)
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "live", "--source", "sample", "--remote", url,
                        "--frames", "3", "-o", "null"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "server at" in p.stderr and "Traceback" not in p.stderr


def test_runtime_import_stays_light():
    code = ("import sys, artcam.runtime.cli, artcam.runtime.commands, artcam.runtime.backends.remote; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytriton', 'tritonclient', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_exported_triton_repository_needs_the_onnxruntime_backend(tmp_path):
    """`artcam export --format triton` writes an ``onnxruntime_onnx`` model; pytriton's bundled server has
    only the Python backend, so it says exactly that (the README names the NGC server that loads it)."""
    pytest.importorskip("onnx", reason="artcam export needs the export extra")
    from artcam.runtime.zoo import SHIPPED_DIR
    from artcam.serving.launch import load_repository_with_bundled_server

    repo = tmp_path / "repo"
    p = subprocess.run([sys.executable, "-m", "artcam.runtime.cli", "export", str(SHIPPED_DIR / f"{STYLIZER}.onnx"),
                        "--format", "triton", "-o", str(repo), "--device", "cpu"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (repo / STYLIZER / "config.pbtxt").read_text().count('platform: "onnxruntime_onnx"') == 1
    loaded, errors = load_repository_with_bundled_server(repo)
    assert not loaded
    assert "unable to find backend library for backend 'onnxruntime'" in errors, errors
