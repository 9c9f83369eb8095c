"""OpenVINO backend for x86 and ARM CPUs (``--backend openvino``; ``pip install openvino``).

Why a second CPU runtime: ONNX Runtime's CPU kernels run a stylizer's instance norms, adds and pixel shuffle as
separate passes with layout conversions between them, half of an INT8 stylizer's time at 1280x720; OpenVINO
compiles the same ONNX file into fused kernels in its own blocked layout (the shipped FP32 stylizers ran 2.1x
and 3.0x faster at 1280x720 on one thread of a 2-core x86 machine, docs/benchmarks.md). It reads the artcam
ONNX file as it is; the model file's metadata stays artcam's.

Frames of one size are the live case, so the graph is compiled for each input shape it is given (static shapes
compile to faster kernels than dynamic ones), on first use, and a few shapes are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

import numpy as np

from ..errors import ArtcamError, ModelError
from .base import Runner, TensorSpec

KEEP_SHAPES = 4  # compiled input shapes kept per runner


def openvino_available() -> bool:
    """Whether OpenVINO is installed (found, not imported: importing it takes a while)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


class OpenVinoRunner(Runner):
    """Runs an ONNX model (bytes) on OpenVINO's CPU plugin; ``threads`` 0 lets OpenVINO choose."""

    name = "openvino"

    def __init__(self, model: bytes, threads: int = 0):
        super().__init__()
        self.data = model
        self.threads = int(threads)
        self.device = "cpu"
        self._core = None
        self._model = None
        self._compiled: OrderedDict[tuple, tuple] = OrderedDict()  # input shapes -> (compiled model, request)
        self._inputs: list[TensorSpec] = []
        self._outputs: list[TensorSpec] = []

    def activate_impl(self) -> None:
        try:
            import openvino as ov
        except ImportError as e:
            raise ArtcamError("--backend openvino: OpenVINO is not installed", "pip install openvino") from e
        self._core = ov.Core()
        try:
            self._model = self._core.read_model(self.data, b"")
        except Exception as e:  # OpenVINO raises its own types for models it cannot read
            msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise ModelError(f"OpenVINO cannot read the model: {msg}", "check the file or re-export it") from e
        self._inputs = [self._spec(p) for p in self._model.inputs]
        self._outputs = [self._spec(p) for p in self._model.outputs]

    @staticmethod
    def _spec(port) -> TensorSpec:
        shape = tuple(int(d.get_length()) if d.is_static else None for d in port.get_partial_shape())
        return TensorSpec(port.get_any_name(), shape, np.dtype(port.get_element_type().to_dtype()))

    def deactivate_impl(self) -> None:
        self._compiled.clear()
        self._model = self._core = None

    def input_specs_impl(self) -> list[TensorSpec]:
        return self._inputs

    def output_specs_impl(self) -> list[TensorSpec]:
        return self._outputs

    def _request(self, feeds: Mapping[str, np.ndarray]):
        key = tuple((s.name, tuple(feeds[s.name].shape)) for s in self._inputs)
        hit = self._compiled.get(key)
        if hit is not None:
            self._compiled.move_to_end(key)
            return hit
        model = self._model.clone()
        model.reshape({name: list(shape) for name, shape in key})
        config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "ENABLE_CPU_PINNING": "NO"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = str(self.threads)
        compiled = self._core.compile_model(model, "CPU", config)
        hit = (compiled, compiled.create_infer_request(), [o.name for o in self._outputs])  # the ONNX file's names
        self._compiled[key] = hit
        while len(self._compiled) > KEEP_SHAPES:
            self._compiled.popitem(last=False)
        return hit

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        _, request, names = self._request(feeds)
        request.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()})
        # the request's own output memory, valid until its next infer (Runner.infer: callers copy what they keep)
        return {n: request.get_output_tensor(i).data for i, n in enumerate(names)}
