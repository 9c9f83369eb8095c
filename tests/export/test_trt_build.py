"""TensorRT builder and runner logic against fake ``tensorrt`` / ``cudart`` modules.

The fakes implement only the documented calls artcam makes, record them, and (for the runner) move
real bytes through ctypes memory, so buffer reuse, shape changes, profiles and CUDA-graph replay are
exercised. They prove the control flow, not TensorRT itself: that needs the GPU tests.
"""

from __future__ import annotations

import ctypes
import json
import types

import numpy as np
import pytest

from artcam.runtime.backends import engine_file as ef
from artcam.runtime.errors import ArtcamError, InputError

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from artcam.runtime.backends import trt_build as tb  # noqa: E402


def tiny_onnx(dynamic=True, qdq=False, fp16=False) -> bytes:
    dims = ["n", 3, "h", "w"] if dynamic else [1, 3, 8, 8]
    t = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    nodes = [helper.make_node("Relu", ["image"], ["out"])]
    inits = []
    if qdq:
        inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]), helper.make_tensor("z", TensorProto.INT8, [], [0])]
        nodes = [helper.make_node("QuantizeLinear", ["image", "s", "z"], ["q"]),
                 helper.make_node("DequantizeLinear", ["q", "s", "z"], ["out"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", t, dims)],
                          [helper.make_tensor_value_info("out", t, dims)], inits)
    return helper.make_model(g, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


# --- fake tensorrt (builder side) --------------------------------------------------------------


def fake_trt(version="10.3.0", parse_ok=True):
    calls = []
    major = int(version.split(".")[0])
    flags = ["VERSION_COMPATIBLE"] + (["FP16", "INT8"] if major < 11 else [])  # 11.x removed them

    class Tensor:
        def __init__(self, name, shape):
            self.name, self.shape = name, shape

    class Network:
        def __init__(self, flags):
            self.flags, self.inputs = flags, []
            calls.append(("create_network", flags))

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, i):
            return self.inputs[i]

    class Parser:
        def __init__(self, network, logger):
            self.network = network
            self.num_errors = 0 if parse_ok else 1

        def parse(self, data):
            if not parse_ok:
                return False
            m = onnx.load_from_string(data)
            for v in m.graph.input:
                shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim)
                self.network.inputs.append(Tensor(v.name, shape))
            return True

        def get_error(self, i):
            return "In node 0 (Foo): UNSUPPORTED_NODE: no importer for op Foo"

    class Cache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return self.data + b"+tuned"

    class Config:
        def __init__(self):
            self.flags, self.profiles, self.cache = [], [], None
            self.hardware_compatibility_level = None

        def set_memory_pool_limit(self, pool, size):
            calls.append(("workspace", pool, size))

        def set_flag(self, f):
            self.flags.append(f)

        def add_optimization_profile(self, p):
            self.profiles.append(p.shapes)

        def create_timing_cache(self, data):
            calls.append(("timing_cache_in", bytes(data)))
            return Cache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache

        def get_timing_cache(self):
            return self.cache

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, mn, op, mx):
            self.shapes[name] = (mn, op, mx)

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls.append(("build", config))
            return json.dumps({"flags": config.flags, "profiles": len(config.profiles)}).encode()

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    trt = types.SimpleNamespace(
        __version__=version, Logger=Logger, Builder=Builder, OnnxParser=Parser,
        NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=1),
        BuilderFlag=types.SimpleNamespace(**{f: f for f in flags}),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="WORKSPACE"),
        HardwareCompatibilityLevel=types.SimpleNamespace(AMPERE_PLUS="AMPERE_PLUS"),
    )
    return trt, calls


PROFILE = {"image": ((1, 3, 16, 16), (1, 3, 64, 64), (2, 3, 128, 128))}
GPU = ("NVIDIA Fake", "8.6")


def _build(data, trt, **kw):
    return tb.build_engine(data, tb.BuildOptions(**kw), gpu=GPU, trt=trt, log=lambda m: None)


def test_trt10_weakly_typed_fp16_with_profile_and_timing_cache(tmp_path):
    trt, calls = fake_trt("10.3.0")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    header, plan = _build(tiny_onnx(), trt, precision="fp16", profiles=[PROFILE], timing_cache=cache,
                          workspace_mb=512, version_compatible=True)
    assert ("create_network", 0) in calls  # not strongly typed on 10.x
    assert json.loads(plan) == {"flags": ["FP16", "VERSION_COMPATIBLE"], "profiles": 1}
    assert ("workspace", "WORKSPACE", 512 << 20) in calls and ("timing_cache_in", b"old") in calls
    assert cache.read_bytes() == b"old+tuned"  # the tuned cache is written back (atomically)
    assert header.precision == "fp16" and not header.strongly_typed and header.version_compatible
    assert header.profiles == (PROFILE,) and header.onnx_hash == ef.onnx_digest(tiny_onnx())
    assert header.gpu_name == "NVIDIA Fake" and header.compute_capability == "8.6"


def test_trt10_int8_needs_qdq_and_sets_both_flags():
    trt, _ = fake_trt("10.3.0")
    with pytest.raises(ArtcamError, match="needs a Q/DQ"):
        _build(tiny_onnx(), trt, precision="int8", profiles=[PROFILE])
    _, plan = _build(tiny_onnx(qdq=True), trt, precision="int8", profiles=[PROFILE])
    assert json.loads(plan)["flags"] == ["FP16", "INT8"]


def test_trt11_strongly_typed_no_precision_flags():
    trt, calls = fake_trt("11.0.0")
    with pytest.raises(ArtcamError, match="precision of its ONNX"):  # FP32 ONNX cannot become FP16 by flag
        _build(tiny_onnx(), trt, precision="fp16", profiles=[PROFILE])
    header, plan = _build(tiny_onnx(fp16=True), trt, precision="fp16", profiles=[PROFILE], hardware_compatible=True)
    assert ("create_network", 1 << 1) in calls and header.strongly_typed
    assert json.loads(plan)["flags"] == []  # BuilderFlag.FP16 does not exist in the fake 11.x
    header, plan = _build(tiny_onnx(qdq=True), trt, precision="int8", profiles=[PROFILE])
    assert header.precision == "int8" and json.loads(plan)["flags"] == []


def test_build_errors_are_clear():
    trt, _ = fake_trt("10.3.0", parse_ok=False)
    with pytest.raises(ArtcamError, match="cannot parse the ONNX model: In node 0 \\(Foo\\)"):
        _build(tiny_onnx(), trt)
    trt, _ = fake_trt("10.3.0")
    with pytest.raises(ArtcamError, match="dynamic inputs .* no optimisation profile"):
        _build(tiny_onnx(), trt)
    with pytest.raises(InputError, match="changes fixed dim 1"):
        _build(tiny_onnx(), trt, profiles=[{"image": ((1, 4, 8, 8),) * 3}])
    _build(tiny_onnx(dynamic=False), trt)  # a static model needs no profile
    with pytest.raises(ArtcamError, match="unknown precision"):
        _build(tiny_onnx(), trt, precision="int4", profiles=[PROFILE])


def test_missing_tensorrt_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ArtcamError, match="TensorRT is not installed"):
        tb.import_trt()


def test_engine_precision_of():
    assert tb.engine_precision_of(tiny_onnx(qdq=True), False) == "int8"
    assert tb.engine_precision_of(tiny_onnx(fp16=True), False) == "fp16"
    assert tb.engine_precision_of(tiny_onnx(), True) == "fp16"
    assert tb.engine_precision_of(tiny_onnx(), False) == "fp32"


# --- fake runtime: cudart over ctypes memory, an engine that doubles its input ------------------


class FakeCudart:
    class cudaMemcpyKind:  # noqa: N801
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    class cudaStreamCaptureMode:  # noqa: N801
        cudaStreamCaptureModeThreadLocal = 1

    def __init__(self):
        self.mem, self.allocs, self.capturing, self.launches = {}, 0, None, 0

    def _alloc(self, n):
        buf = ctypes.create_string_buffer(n)
        self.mem[ctypes.addressof(buf)] = buf
        self.allocs += 1
        return 0, ctypes.addressof(buf)

    cudaMalloc = cudaMallocHost = _alloc

    def cudaFree(self, p):
        self.mem.pop(p)
        return (0,)

    cudaFreeHost = cudaFree

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        ctypes.memmove(dst, src, n)
        return (0,)

    def cudaStreamCreate(self):
        return 0, 7

    def cudaStreamDestroy(self, s):
        return (0,)

    def cudaStreamSynchronize(self, s):
        return (0,)

    def cudaGetDevice(self):
        return 0, 0

    def cudaGetDeviceProperties(self, d):
        return 0, types.SimpleNamespace(name=b"NVIDIA Fake\x00\x00", major=8, minor=6)

    def cudaGetErrorName(self, e):
        return 0, b"cudaErrorFake"

    def cudaStreamBeginCapture(self, s, mode):
        self.capturing = []
        return (0,)

    def cudaStreamEndCapture(self, s):
        graph, self.capturing = self.capturing, None
        return 0, graph

    def cudaGraphInstantiate(self, graph, flags):
        return 0, graph

    def cudaGraphLaunch(self, g, s):
        self.launches += 1
        for op in g:
            op()
        return (0,)

    def cudaGraphDestroy(self, g):
        return (0,)

    cudaGraphExecDestroy = cudaGraphDestroy


def fake_runtime_trt(cudart: FakeCudart, version="10.3.0", scale=2.0):
    trt, _ = fake_trt(version)
    state = {"executes": 0}

    class Context:
        def __init__(self):
            self.shapes, self.addr, self.profile = {}, {}, 0

        def set_optimization_profile_async(self, i, stream):
            self.profile = i

        def set_input_shape(self, name, shape):
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            return self.shapes["image"]

        def set_tensor_address(self, name, ptr):
            self.addr[name] = ptr

        def execute_async_v3(self, stream):
            def op():
                n = int(np.prod(self.shapes["image"]))
                src = np.frombuffer((ctypes.c_float * n).from_address(self.addr["image"]), np.float32)
                dst = np.frombuffer((ctypes.c_float * n).from_address(self.addr["out"]), np.float32)
                dst[:] = scale * src
            if cudart.capturing is not None:
                cudart.capturing.append(op)
            else:
                state["executes"] += 1
                op()
            return True

    class Engine:
        num_io_tensors = 2

        def get_tensor_name(self, i):
            return ("image", "out")[i]

        def get_tensor_shape(self, name):
            return (-1, 3, -1, -1)

        def get_tensor_dtype(self, name):
            return "float32"

        def get_tensor_mode(self, name):
            return "INPUT" if name == "image" else "OUTPUT"

        def create_execution_context(self):
            return Context()

    class Runtime:
        def __init__(self, logger):
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, plan):
            return None if plan == b"CORRUPT" else Engine()

    trt.Runtime = Runtime
    trt.nptype = lambda dt: np.float32
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    return trt, state


def _runner(cuda_graph=False, header_kw=None, plan=b"PLAN"):
    from artcam.runtime.backends.trt import TrtRunner

    cudart = FakeCudart()
    trt, state = fake_runtime_trt(cudart)
    h = ef.EngineHeader(trt_version="10.3.0", gpu_name="NVIDIA Fake", compute_capability="8.6", precision="fp32",
                        profiles=(PROFILE,), **(header_kw or {}))
    return TrtRunner(plan, h, "t.engine", cuda_graph=cuda_graph, trt=trt, cudart=cudart), cudart, state


def test_runner_runs_reuses_buffers_and_handles_shape_changes():
    r, cudart, _ = _runner()
    with r:
        assert [s.name for s in r.input_specs] == ["image"] and r.input_specs[0].shape == (None, 3, None, None)
        x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
        np.testing.assert_allclose(r.infer(x)["out"], 2 * x)
        allocs = cudart.allocs
        r.infer(x + 1)
        assert cudart.allocs == allocs  # same shape: nothing allocated
        small = x[:, :, :16, :16].copy()
        np.testing.assert_allclose(r.infer(small)["out"], 2 * small)
        assert cudart.allocs == allocs  # smaller: buffers reused
        big = np.ones((2, 3, 128, 128), np.float32)
        np.testing.assert_allclose(r.infer(big)["out"], 2 * big)
        assert cudart.allocs > allocs  # larger: grown once
        with pytest.raises(InputError, match="outside the engine's optimisation profiles"):
            r.infer(np.ones((1, 3, 256, 256), np.float32))
        with pytest.raises(InputError, match="dtype"):
            r.infer(x.astype(np.float64))
    assert not cudart.mem  # everything freed on deactivate


def test_runner_cuda_graph_replays_until_shape_changes():
    r, cudart, state = _runner(cuda_graph=True)
    with r:
        x = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
        for k in range(4):
            np.testing.assert_allclose(r.infer(x + k)["out"], 2 * (x + k))
        assert state["executes"] == 1 and cudart.launches == 3  # first run direct, then captured + replayed
        y = np.ones((1, 3, 16, 16), np.float32)
        np.testing.assert_allclose(r.infer(y)["out"], 2 * y)
        assert state["executes"] == 2  # a new shape drops the graph


def test_runner_refuses_mismatched_or_broken_engines():
    r, _, _ = _runner()
    r.header = ef.EngineHeader(trt_version="10.1.0", gpu_name="NVIDIA Fake", compute_capability="8.6",
                               precision="fp32", profiles=(PROFILE,))
    with pytest.raises(ef.EngineError, match="built with TensorRT 10.1.0, this machine has TensorRT 10.3.0"):
        r.activate()
    r, _, _ = _runner()
    r.header = ef.EngineHeader(trt_version="10.3.0", gpu_name="NVIDIA A100", compute_capability="8.0",
                               precision="fp32")
    with pytest.raises(ef.EngineError, match="built for NVIDIA A100 \\(compute 8.0\\), this GPU is NVIDIA Fake"):
        r.activate()
    r, _, _ = _runner(plan=b"CORRUPT")
    with pytest.raises(ef.EngineError, match="could not deserialize"):
        r.activate()


def test_runner_for_onnx_builds_once_then_loads_from_cache_and_rebuilds_on_mismatch(tmp_path, monkeypatch):
    import sys

    from artcam.runtime.backends import trt as trt_backend
    from artcam.runtime.modelfile import ImageInput, ImageOutput, ModelMeta, with_metadata

    cudart = FakeCudart()
    monkeypatch.setattr(trt_backend, "import_cudart", lambda: cudart)
    meta = ModelMeta(task="stylize", name="relu", image=ImageInput(multiple=8, min_size=16),
                     output=ImageOutput(name="out"))
    data = with_metadata(tiny_onnx(), meta.to_props())
    logs = []
    for version, expect_build in (("10.3.0", True), ("10.3.0", False), ("10.4.0", True)):
        fake, _ = fake_runtime_trt(cudart, version)
        monkeypatch.setitem(sys.modules, "tensorrt", fake)
        logs.clear()
        r = trt_backend.runner_for_onnx(tmp_path / "relu.onnx", data, cache_dir=tmp_path / "cache", log=logs.append)
        assert any("building a TensorRT engine" in m for m in logs) == expect_build
        with r:
            x = np.ones((1, 3, 480, 640), np.float32)
            np.testing.assert_allclose(r.infer(x)["out"], 2 * x)
        assert r.header.trt_version == version and r.header.meta["artcam.name"] == '"relu"'
        prof = r.header.profiles[0]["image"]
        assert prof[0] == (1, 3, 16, 16) and prof[1] == (1, 3, 480, 640) and prof[2] == (1, 3, 1088, 1920)
    assert "do not match: TensorRT 10.3.0" in logs[0]  # says why it rebuilt
    assert len(list((tmp_path / "cache").glob("relu-*.engine"))) == 2
    assert (tmp_path / "cache" / "timing.cache").is_file()


def test_cli_engine_export_with_fake_tensorrt(tmp_path, monkeypatch):
    """`artcam export m.onnx --format engine`: profile from --imgsz, engine verified, header + metadata written."""
    import sys

    from artcam.export import cli
    from artcam.runtime.backends import trt as trt_backend
    from artcam.runtime.modelfile import ImageInput, ImageOutput, ModelMeta, from_props, write_model_file

    cudart = FakeCudart()
    monkeypatch.setattr(trt_backend, "import_cudart", lambda: cudart)
    meta = ModelMeta(task="stylize", name="relu", image=ImageInput(multiple=8, min_size=16), output=ImageOutput(name="out"))
    src = write_model_file(tmp_path / "relu.onnx", tiny_onnx(), meta)
    fake, _ = fake_runtime_trt(cudart, "10.3.0", scale=1.0)  # Relu on [0, 1] images is the identity
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    out = tmp_path / "relu.engine"
    assert cli.main([str(src), "--format", "engine", "--imgsz", "64", "96", "--max-batch", "2", "-o", str(out)]) == 0
    header, plan = ef.read_engine_file(out)
    assert header.precision == "fp32" and header.profiles[0]["image"] == ((1, 3, 64, 96), (1, 3, 64, 96), (2, 3, 64, 96))
    assert from_props(header.meta).name == "relu" and header.onnx_hash.startswith("sha256:")
    rep = json.loads((tmp_path / "relu.engine.report.json").read_text())
    assert rep["engine_vs_fp32"]["passed"] and rep["engine"]["trt_version"] == "10.3.0"
    # a wrong engine (here: doubling) is refused and nothing is written
    fake, _ = fake_runtime_trt(cudart, "10.3.0", scale=2.0)
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    with pytest.raises(ArtcamError, match="engine vs ONNX FP32 fails the tolerance"):
        cli.main([str(src), "--format", "engine", "--imgsz", "64", "96", "-o", str(tmp_path / "bad.engine")])
    assert not (tmp_path / "bad.engine").exists()
