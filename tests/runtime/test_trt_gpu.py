"""GPU checks: FP16 on a real GPU against the CPU emulation, ORT CUDA, and a real TensorRT engine.

Each skips with its reason where CUDA, onnxruntime-gpu, TensorRT or cuda-python is missing
(run them with `bash tools/gpu_check.sh` on a GPU machine).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from artcam.export import parity  # noqa: E402
from artcam.export.onnx_export import to_onnx_bytes  # noqa: E402
from artcam.runtime.backends.onnxrt import make_session  # noqa: E402

pytestmark = pytest.mark.gpu


def _cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible to torch")


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.b = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.c = torch.nn.Conv2d(16, 3, 3, padding=1)

    def forward(self, image):
        return torch.sigmoid(self.c(torch.nn.functional.relu6(self.b(torch.relu(self.a(image))))) + image)


def _onnx():
    torch.manual_seed(0)
    net = Net().eval()
    data = to_onnx_bytes(net, {"image": torch.rand(1, 3, 64, 64)}, ["out"],
                         {"image": {0: "n", 2: "h", 3: "w"}, "out": {0: "n", 2: "h", 3: "w"}})
    return net, data


def _feeds(n=3, hw=(96, 128)):
    rng = np.random.default_rng(0)
    return [{"image": rng.random((1, 3, *hw), dtype=np.float32)} for _ in range(n)]


def test_cuda_fp16_error_is_close_to_the_cpu_emulation():
    """The emulated FP16 PSNR (what `artcam export --half` reports) must not flatter the real GPU much."""
    _cuda()
    from artcam.export.precision import emulate_fp16

    net, data = _onnx()
    feeds = _feeds()
    refs = parity.run_torch(net, feeds, ["out"])
    emu = parity.run_ort(make_session(emulate_fp16(data)), feeds)
    half = net.cuda().half()
    with torch.no_grad():
        gpu = [{"out": half(torch.from_numpy(f["image"]).cuda().half()).float().cpu().numpy()} for f in feeds]
    p_emu = parity.psnr(np.concatenate([r["out"] for r in refs]), np.concatenate([e["out"] for e in emu]), 1.0)
    p_gpu = parity.psnr(np.concatenate([r["out"] for r in refs]), np.concatenate([g["out"] for g in gpu]), 1.0)
    print(f"FP16 PSNR: CPU emulation {p_emu:.1f} dB, real GPU {p_gpu:.1f} dB")
    assert p_gpu > 40 and p_emu > 40
    assert p_emu - p_gpu < 10  # the emulation is not wildly optimistic


def test_ort_cuda_runs_fp16_onnx():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime without CUDAExecutionProvider (install onnxruntime-gpu)")
    from artcam.export.precision import to_fp16

    _, data = _onnx()
    sess = make_session(to_fp16(data), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    if sess.get_providers()[0] != "CUDAExecutionProvider":
        pytest.skip(f"CUDA provider failed to initialise; got {sess.get_providers()}")
    feeds = _feeds()
    refs = parity.run_ort(make_session(data), feeds)
    got = parity.run_ort(sess, feeds)
    cmp = parity.compare("ORT CUDA FP16 vs CPU FP32", refs, got, None, parity.Tolerance(max_abs=2e-2))
    print("\n".join(cmp.lines()))
    assert cmp.passed


def test_tensorrt_engine_build_file_and_runner(tmp_path):
    _cuda()
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    try:
        from artcam.runtime.backends.trt import import_cudart

        import_cudart()
    except Exception as e:
        pytest.skip(f"cuda-python missing: {e}")
    from artcam.runtime.backends import engine_file as ef
    from artcam.runtime.backends.trt import TrtRunner, gpu_info
    from artcam.runtime.backends.trt_build import BuildOptions, build_engine
    from artcam.runtime.errors import InputError

    _, data = _onnx()
    prof = {"image": ((1, 3, 32, 32), (1, 3, 96, 128), (2, 3, 256, 256))}
    header, plan = build_engine(data, BuildOptions(precision="fp16", profiles=[prof],
                                                   timing_cache=tmp_path / "t.cache"), gpu=gpu_info())
    path = ef.write_engine_file(tmp_path / "m.engine", header, plan)
    h2, plan2 = ef.read_engine_file(path)
    feeds = _feeds() + _feeds(1, (64, 64))
    refs = parity.run_ort(make_session(data), feeds)
    with TrtRunner(plan2, h2, str(path), cuda_graph=True) as r:
        got = [{"out": r.infer(f)["out"].copy()} for f in feeds]
        with pytest.raises(InputError, match="outside"):
            r.infer(np.zeros((1, 3, 512, 512), np.float32))
    cmp = parity.compare("TensorRT FP16 vs ORT CPU FP32", refs, got, None, parity.Tolerance(max_abs=3e-2))
    print("\n".join(cmp.lines()))
    assert cmp.passed
