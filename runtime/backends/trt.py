"""Native TensorRT runner: named I/O tensors, ``execute_async_v3`` on a CUDA stream, no torch.

CUDA comes from cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart`` in older releases).
Host buffers are page-locked and device buffers are kept and grown only when a larger shape
arrives, so a stream of same-sized frames allocates nothing. With ``cuda_graph=True`` the enqueue
is captured into a CUDA graph after the first run at a given shape and replayed while shapes and
buffers stay the same. Everything heavy is imported when the runner activates.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import ArtcamError, ModelError
from ..modelfile import PREFIX, parse_model_bytes
from .base import Runner, TensorSpec
from .engine_file import (
    EngineCache,
    EngineError,
    EngineHeader,
    Profile,
    cache_key,
    check_compatible,
    onnx_digest,
    profile_for_image_model,
    read_engine_file,
    select_profile,
)
from .trt_build import BuildOptions, build_engine, engine_precision_of, import_trt, trt_major


def import_cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as e:
            raise ArtcamError("the TensorRT backend needs cuda-python", "pip install cuda-python") from e
    return cudart


class _Cuda:
    """Thin error-checked wrapper over cuda-python's tuple-returning calls."""

    def __init__(self, cudart):
        self.rt = cudart

    def __call__(self, result):
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, name = self.rt.cudaGetErrorName(err)
            raise ArtcamError(f"CUDA call failed: {name.decode() if isinstance(name, bytes) else name}")
        return rest[0] if len(rest) == 1 else (tuple(rest) if rest else None)

    def gpu(self) -> tuple[str, str]:
        dev = self(self.rt.cudaGetDevice())
        prop = self(self.rt.cudaGetDeviceProperties(dev))
        name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
        return name.rstrip("\x00").strip(), f"{prop.major}.{prop.minor}"


def gpu_info() -> tuple[str, str]:
    """(GPU name, compute capability) of the current CUDA device."""
    return _Cuda(import_cudart()).gpu()


class _Buffer:
    """A page-locked host buffer and a device buffer of the same capacity."""

    def __init__(self, cuda: _Cuda, nbytes: int):
        self.cuda = cuda
        self.nbytes = max(int(nbytes), 1)
        self.host = cuda(cuda.rt.cudaMallocHost(self.nbytes))
        self.device = cuda(cuda.rt.cudaMalloc(self.nbytes))

    def host_view(self, shape, dtype) -> np.ndarray:
        count = int(np.prod(shape, dtype=np.int64))
        raw = (ctypes.c_byte * self.nbytes).from_address(int(self.host))
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)

    def free(self) -> None:
        self.cuda(self.cuda.rt.cudaFree(self.device))
        self.cuda(self.cuda.rt.cudaFreeHost(self.host))


class TrtRunner(Runner):
    """Runs a deserialized TensorRT plan; the artcam header was checked against this machine first."""

    name = "tensorrt"

    def __init__(self, plan: bytes, header: EngineHeader, where: str = "engine", cuda_graph: bool = False,
                 trt=None, cudart=None):
        super().__init__()
        self.plan = plan
        self.header = header
        self.where = where
        self.use_graph = cuda_graph
        self._trt, self._cudart = trt, cudart
        self._bufs: dict[str, _Buffer] = {}
        self._graph_exec = None
        self._shapes: dict[str, tuple] = {}
        self._profile = -1

    # -- lifecycle ------------------------------------------------------------------------------
    def activate_impl(self) -> None:
        trt = self._trt or import_trt()
        self.cuda = _Cuda(self._cudart or import_cudart())
        name, cc = self.cuda.gpu()
        check_compatible(self.header, str(trt.__version__), name, cc, self.where)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        if self.header.version_compatible:
            self.runtime.engine_host_code_allowed = True  # the plan embeds its own lean runtime
        self.engine = self.runtime.deserialize_cuda_engine(self.plan)
        if self.engine is None:
            raise EngineError(f"TensorRT could not deserialize {self.where}", "rebuild the engine on this machine")
        self.context = self.engine.create_execution_context()
        self.stream = self.cuda(self.cuda.rt.cudaStreamCreate())
        self.device = "tensorrt"
        self.gpu_name = name
        self._inputs, self._outputs = [], []
        for i in range(self.engine.num_io_tensors):
            n = self.engine.get_tensor_name(i)
            shape = tuple(d if d >= 0 else None for d in self.engine.get_tensor_shape(n))
            spec = TensorSpec(n, shape, np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))))
            (self._inputs if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT else self._outputs).append(spec)

    def deactivate_impl(self) -> None:
        rt = self.cuda.rt
        if self._graph_exec is not None:
            self.cuda(rt.cudaGraphExecDestroy(self._graph_exec))
            self._graph_exec = None
        for b in self._bufs.values():
            b.free()
        self._bufs.clear()
        self.cuda(rt.cudaStreamDestroy(self.stream))
        self.context = self.engine = self.runtime = None
        self._shapes, self._profile = {}, -1

    def input_specs_impl(self) -> list[TensorSpec]:
        return self._inputs

    def output_specs_impl(self) -> list[TensorSpec]:
        return self._outputs

    # -- inference ------------------------------------------------------------------------------
    def _buffer(self, name: str, nbytes: int) -> _Buffer:
        b = self._bufs.get(name)
        if b is None or b.nbytes < nbytes:
            if b is not None:
                b.free()
            b = self._bufs[name] = _Buffer(self.cuda, nbytes)
            self.context.set_tensor_address(name, int(b.device))
            self._drop_graph()  # captured addresses are stale
        return b

    def _drop_graph(self) -> None:
        if self._graph_exec is not None:
            self.cuda(self.cuda.rt.cudaGraphExecDestroy(self._graph_exec))
            self._graph_exec = None

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        rt, cuda, stream = self.cuda.rt, self.cuda, self.stream
        shapes = {s.name: tuple(feeds[s.name].shape) for s in self._inputs}
        if shapes != self._shapes:
            idx = select_profile(self.header.profiles, shapes)  # InputError when outside every profile
            if idx != self._profile:
                self.context.set_optimization_profile_async(idx, int(stream))
                self._profile = idx
            for n, shp in shapes.items():
                if not self.context.set_input_shape(n, shp):
                    raise ArtcamError(f"TensorRT rejected shape {list(shp)} for input {n!r}")
            self._shapes = shapes
            self._drop_graph()
        h2d = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for s in self._inputs:
            arr = np.ascontiguousarray(feeds[s.name])
            b = self._buffer(s.name, arr.nbytes)
            b.host_view(arr.shape, arr.dtype)[...] = arr
            cuda(rt.cudaMemcpyAsync(b.device, b.host, arr.nbytes, h2d, stream))
        outs = {}
        for s in self._outputs:
            shp = tuple(self.context.get_tensor_shape(s.name))
            nbytes = int(np.prod(shp, dtype=np.int64)) * s.dtype.itemsize
            outs[s.name] = (self._buffer(s.name, nbytes), shp, nbytes)
        self._enqueue()
        result = {}
        for n, (b, shp, nbytes) in outs.items():
            cuda(rt.cudaMemcpyAsync(b.host, b.device, nbytes, d2h, stream))
        cuda(rt.cudaStreamSynchronize(stream))
        for s in self._outputs:
            b, shp, _ = outs[s.name]
            result[s.name] = b.host_view(shp, s.dtype)
        return result

    def _enqueue(self) -> None:
        rt, cuda, stream = self.cuda.rt, self.cuda, self.stream
        if self._graph_exec is not None:
            cuda(rt.cudaGraphLaunch(self._graph_exec, stream))
            return
        if not self.context.execute_async_v3(int(stream)):
            raise ArtcamError("TensorRT execution failed (see the TensorRT log)")
        if self.use_graph:
            # The first run at a shape did TensorRT's deferred setup; capture the next enqueue.
            cuda(rt.cudaStreamSynchronize(stream))
            mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
            cuda(rt.cudaStreamBeginCapture(stream, mode))
            ok = self.context.execute_async_v3(int(stream))
            graph = cuda(rt.cudaStreamEndCapture(stream))
            if ok:
                self._graph_exec = cuda(rt.cudaGraphInstantiate(graph, 0))
            cuda(rt.cudaGraphDestroy(graph))


# --- building / loading ------------------------------------------------------------------------


def _onnx_inputs(data: bytes) -> dict[str, tuple]:
    """Declared input shapes (-1 for dynamic dims), read with ONNX Runtime's CPU session."""
    from .onnxrt import make_session

    sess = make_session(data)
    return {i.name: tuple(d if isinstance(d, int) else -1 for d in i.shape) for i in sess.get_inputs()}


def default_profile(data: bytes, meta_props: Mapping[str, str]) -> Profile:
    """Batch 1; for free-size image models 2*multiple .. 1920x1088 px with 640x480 as the optimum.

    Override with ARTCAM_TRT_MAX_HW="H,W" / ARTCAM_TRT_OPT_HW for other sizes.
    """
    from ..modelfile import from_props

    meta = from_props(meta_props)
    mult = meta.image.multiple if meta and meta.image else 8

    def rounded(h, w):
        return (-(-h // mult) * mult, -(-w // mult) * mult)

    def env_hw(key, default):
        v = os.environ.get(key)
        return rounded(*(int(x) for x in v.split(","))) if v else rounded(*default)

    low = max(2 * mult, meta.image.min_size if meta and meta.image else 32)
    return profile_for_image_model(
        _onnx_inputs(data), min_hw=rounded(low, low), opt_hw=env_hw("ARTCAM_TRT_OPT_HW", (480, 640)),
        max_hw=env_hw("ARTCAM_TRT_MAX_HW", (1088, 1920)),
    )


def runner_for_engine(path: str | os.PathLike, cuda_graph: bool = False) -> TrtRunner:
    header, plan = read_engine_file(path)
    return TrtRunner(plan, header, str(path), cuda_graph=cuda_graph)


def engine_meta(path: str | os.PathLike):
    """The artcam ModelMeta stored in an engine's header (None for an engine built from a foreign ONNX);
    reads only the header, so ``artcam models``/loading can describe engines without TensorRT."""
    from ..modelfile import from_props
    from .engine_file import read_engine_header

    return from_props(read_engine_header(path).meta)


def runner_for_onnx(
    path: str | os.PathLike,
    data: bytes,
    *,
    precision: str | None = None,
    profiles: list[Profile] | None = None,
    cache_dir: str | os.PathLike | None = None,
    cuda_graph: bool = False,
    log=None,
) -> TrtRunner:
    """Load the cached engine for this ONNX on this GPU + TensorRT, building (and caching) it if needed."""
    log = log or (lambda m: print(m, file=sys.stderr))
    trt = import_trt()
    name, cc = gpu_info()
    _, props = parse_model_bytes(data)
    props = {k: v for k, v in props.items() if k.startswith(PREFIX)}
    precision = precision or engine_precision_of(data, want_half=False)
    profiles = profiles or [default_profile(data, props)]
    typed = trt_major(trt) >= 11
    key = cache_key(onnx_hash=onnx_digest(data), trt_version=str(trt.__version__), gpu_name=name,
                    compute_capability=cc, precision=precision, profiles=profiles, strongly_typed=typed)
    cache = EngineCache(cache_dir)
    stem = Path(path).stem
    hit = cache.find(stem, key, str(trt.__version__), name, cc)
    if hit is not None:
        return runner_for_engine(hit, cuda_graph=cuda_graph)
    stale = cache.others(stem, key)
    why = f" (cached engines of {stem} do not match: {'; '.join(d for _, d in stale)})" if stale else ""
    log(f"artcam: building a TensorRT engine for {stem} on {name}{why}; this takes a while once")
    try:
        header, plan = build_engine(
            data, BuildOptions(precision=precision, profiles=profiles,
                               timing_cache=cache.folder / "timing.cache"),
            gpu=(name, cc), meta_props=props, trt=trt, log=log,
        )
    except ArtcamError:
        raise
    except Exception as e:  # TensorRT raises plain RuntimeErrors/TypeErrors
        raise ModelError(f"TensorRT could not build an engine for {path}: {e}",
                         "use --backend onnxruntime, or check the model's ops against TensorRT's ONNX support") from e
    stored = cache.store(stem, header, plan)
    return TrtRunner(plan, header, str(stored), cuda_graph=cuda_graph)

