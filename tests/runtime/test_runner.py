"""The ONNX Runtime runner: parity with a numpy reference, input checks, lifecycle, devices."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models as tm

from artcam.runtime.backends.onnxrt import OrtRunner, SessionFromOnnx, provider_chain
from artcam.runtime.errors import ArtcamError, InputError
from artcam.runtime.loading import load_model


def test_parity_with_numpy_reference(tmp_path):
    p = tm.stylizer(tmp_path / "s.onnx", styles=("a", "b", "c"))
    x = np.random.default_rng(0).random((2, 3, 24, 40), dtype=np.float32)
    for k in range(3):
        style = np.zeros((2, 3), np.float32)
        style[:, k] = 1
        with OrtRunner(SessionFromOnnx(str(p), device="cpu")) as r:
            out = r.infer({"image": x, "style": style})["stylized"]
            assert r.device == "cpu" and r.last_latency_ms > 0
        np.testing.assert_allclose(out, tm.reference_stylize(x, k, 3), atol=1e-6)


def test_input_checks(tmp_path):
    lm = load_model(tm.classifier(tmp_path / "c.onnx"), device="cpu")
    r = lm.runner
    ok = np.zeros((1, 3, 32, 32), np.float32)
    assert set(r.infer(ok)) == {"objects", "style"}  # a bare array for a single-input model
    with pytest.raises(InputError, match="wants shape"):
        r.infer(np.zeros((1, 3, 31, 32), np.float32))
    with pytest.raises(InputError, match="wants dtype float32"):
        r.infer(ok.astype(np.float64))
    with pytest.raises(InputError, match="wants 4 dims"):
        r.infer(np.zeros((3, 32, 32), np.float32))
    with pytest.raises(InputError, match="unknown model inputs"):
        r.infer({"image": ok, "extra": ok})
    lm.close()
    with pytest.raises(RuntimeError, match="not active"):
        r.infer(ok)


def test_missing_input(tmp_path):
    lm = load_model(tm.stylizer(tmp_path / "s.onnx"), device="cpu")
    with pytest.raises(InputError, match=r"missing model inputs \['style'\]"):
        lm.runner.infer({"image": np.zeros((1, 3, 8, 8), np.float32)})
    with pytest.raises(InputError, match="has 2 inputs"):
        lm.runner.infer(np.zeros((1, 3, 8, 8), np.float32))


def test_device_fallback_is_said_once(tmp_path, capsys):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the fallback path is not taken")
    logs = []
    loader = SessionFromOnnx(str(tm.stylizer(tmp_path / "s.onnx")), device="cuda", log=logs.append)
    with OrtRunner(loader) as r:
        assert r.device == "cpu"
    assert "running on CPUExecutionProvider" in loader.fallback_reason
    assert "CUDAExecutionProvider" in loader.fallback_reason  # says why


def test_provider_chain_and_bad_options(tmp_path):
    assert provider_chain("auto") == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_chain("cpu") == ["CPUExecutionProvider"]
    chain = provider_chain("tensorrt", {"trt_fp16_enable": True})
    assert chain[0] == ("TensorrtExecutionProvider", {"trt_fp16_enable": True})
    with pytest.raises(ArtcamError, match="unknown device"):
        provider_chain("tpu")
    with pytest.raises(ArtcamError, match="graph optimisation level"):
        OrtRunner(SessionFromOnnx(str(tm.stylizer(tmp_path / "s.onnx")), opt_level="max")).activate()
    with pytest.raises(ArtcamError, match="unknown backend"):
        load_model(tm.stylizer(tmp_path / "s2.onnx"), backend="tvm")


def test_threads_option(tmp_path):
    with OrtRunner(SessionFromOnnx(str(tm.stylizer(tmp_path / "s.onnx")), device="cpu", threads=1)) as r:
        out = r.infer({"image": np.ones((1, 3, 8, 8), np.float32), "style": np.array([[1, 0]], np.float32)})
    assert out["stylized"].shape == (1, 3, 8, 8)


def test_engine_file_without_tensorrt_says_so(tmp_path):
    """An artcam engine is described from its header alone; running it needs TensorRT, said plainly."""
    import importlib.util

    from artcam.runtime.backends.engine_file import EngineHeader, write_engine_file
    from artcam.runtime.modelfile import read_model_file

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    data, meta = read_model_file(tm.stylizer(tmp_path / "s.onnx"))
    header = EngineHeader(trt_version="10.3.0", gpu_name="Orin", compute_capability="8.7", precision="fp16",
                          meta=meta.to_props())
    eng = write_engine_file(tmp_path / "s.engine", header, b"\0plan")
    from artcam.runtime.backends.trt import engine_meta

    assert engine_meta(eng).styles == meta.styles
    with pytest.raises(ArtcamError, match="TensorRT is not installed"):
        load_model(eng)
