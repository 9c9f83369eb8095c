"""`artcam serve` and clients' mistakes (issue 46): each bad request is a 400 with one line, and with dynamic
batching the good request batched beside it still gets its picture. A real Triton server on loopback.
"""

from __future__ import annotations

import re
import threading
import urllib.request

import cv2
import numpy as np
import pytest

pytest.importorskip("pytriton", reason="the serve extra is not installed (pip install 'artcam[serve]')")
pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed (the serve extra)")
pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed (the serve extra)")

import tritonclient.grpc as tg  # noqa: E402
import tritonclient.http as th  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from artcam.runtime.loading import load_model  # noqa: E402
from artcam.runtime.sources import SampleSource  # noqa: E402
from artcam.runtime.tasks import Stylizer  # noqa: E402
from artcam.serving import request_errors  # noqa: E402
from artcam.serving.launch import ServerProcess  # noqa: E402

pytestmark = [pytest.mark.serve, pytest.mark.slow, pytest.mark.reliability]

STYLIZER, CLASSIFIER = "stylizer_nano", "classifier_lite0"


@pytest.fixture(scope="module")
def server():
    """Dynamic batching that waits up to 0.5 s for company, so requests sent together share a batch."""
    with ServerProcess([STYLIZER, CLASSIFIER], "--threads", "1", "--max-queue-delay-us", "500000",
                       start_timeout_s=180, duration_s=600) as srv:
        yield srv


@pytest.fixture(scope="module")
def frame():
    return SampleSource(size=(64, 96), live=False).frame_at(10).copy()


def _image(mod, arr):
    x = mod.InferInput("image", [1, *arr.shape], "UINT8")
    x.set_data_from_numpy(arr[None])
    return x


def _jpeg(mod, data: bytes):
    x = mod.InferInput("jpeg", [1, 1], "BYTES")
    x.set_data_from_numpy(np.array([[data]], dtype=object))
    return x


BAD = {  # what a client may get wrong -> the words of its one-line answer
    "1x1 image": (lambda mod, f: ([_image(mod, np.zeros((1, 1, 3), np.uint8))], None), "smaller than this model"),
    "16x5000 image": (lambda mod, f: ([_image(mod, np.zeros((16, 5000, 3), np.uint8))], None), "larger than this"),
    "undecodable jpeg": (lambda mod, f: ([_jpeg(mod, b"\xff\xd8 not really a jpeg")], None), "not a decodable"),
    "unknown style": (lambda mod, f: ([_image(mod, f)], {"style": "no_such_style"}), "unknown style 'no_such_style'"),
}


def _status(e: InferenceServerException) -> str:
    return str(e.status())


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_each_bad_input_is_400_with_one_line(server, frame, case, proto):
    mod = th if proto == "http" else tg
    client = mod.InferenceServerClient(f"127.0.0.1:{server.http_port if proto == 'http' else server.grpc_port}")
    make, words = BAD[case]
    inputs, params = make(mod, frame)
    with pytest.raises(InferenceServerException) as e:
        client.infer(STYLIZER, inputs, parameters=params)
    assert _status(e.value) in ("400", "StatusCode.INVALID_ARGUMENT"), (_status(e.value), e.value.message())
    msg = e.value.message()
    assert words in msg and "Traceback" not in msg and "\n" not in msg.strip(), msg
    client.close()


def test_bad_classifier_requests_are_400_too(server, frame):
    client = th.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    for inputs, params, words in (([_jpeg(th, b"GIF89a nope")], None, "not a decodable"),
                                  ([_image(th, frame)], {"top_k": "many"}, "is not a whole number")):
        with pytest.raises(InferenceServerException) as e:
            client.infer(CLASSIFIER, inputs, parameters=params)
        assert _status(e.value) == "400" and words in e.value.message(), e.value.message()


def _exec_count(server, model: str) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).read().decode()
    m = re.search(rf'^nv_inference_exec_count{{model="{model}",version="1"}} (\d+)', text, flags=re.M)
    return int(m.group(1))


def test_a_good_request_batched_with_a_bad_one_gets_its_picture(server, frame):
    """Two cameras send the same frame size at the same moment, one with a style the model lacks: they
    share one batch (the server's execution count goes up by one), the bad one gets its 400 and the
    good one a 200 with the right picture. Three times over."""
    want = Stylizer(load_model(STYLIZER, device="cpu", threads=1), style="udnie")
    expected = want.stylize(frame).copy()
    want.close()
    for attempt in range(3):
        before = _exec_count(server, STYLIZER)
        results: dict[str, object] = {}
        barrier = threading.Barrier(2)

        def send(name, style):
            c = th.InferenceServerClient(f"127.0.0.1:{server.http_port}")
            barrier.wait()
            try:
                results[name] = c.infer(STYLIZER, [_image(th, frame)], parameters={"style": style})
            except InferenceServerException as e:
                results[name] = e
            finally:
                c.close()

        threads = [threading.Thread(target=send, args=("good", "udnie")),
                   threading.Thread(target=send, args=("bad", "no_such_style"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        batches = _exec_count(server, STYLIZER) - before
        assert isinstance(results["bad"], InferenceServerException), results["bad"]
        assert _status(results["bad"]) == "400" and "unknown style" in results["bad"].message()
        good = results["good"]
        assert not isinstance(good, Exception), (attempt, good)
        got = good.as_numpy("image")[0]
        assert got.shape == expected.shape and np.abs(got.astype(int) - expected.astype(int)).max() <= 2
        assert batches == 1, f"attempt {attempt}: the two requests ran in {batches} batches, not one"


def test_the_server_stays_healthy_and_logs_no_client_traceback(server, frame):
    client = tg.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    res = client.infer(STYLIZER, [_image(tg, frame)])
    assert res.as_numpy("image").shape == (1, *frame.shape)
    ok, buf = cv2.imencode(".jpg", frame)
    res = client.infer(CLASSIFIER, [_jpeg(tg, buf.tobytes())], parameters={"top_k": 2})
    assert res.as_numpy("objects_labels").shape[-1] == 2
    client.close()
    assert "Traceback" not in server.log()  # client mistakes never print one, not even in the log


def test_request_error_patch_matches_this_pytriton():
    import pathlib

    from pytriton.models import model as pm

    src = (pathlib.Path(pm.__file__).parent.parent / "proxy" / "model.py").read_text()
    patched = request_errors.with_request_errors(src)
    assert patched is not None and patched.count("artcam_error") >= 2
    assert request_errors.with_request_errors(patched) == patched  # once only
    assert request_errors.with_request_errors("def other(): pass\n") is None
