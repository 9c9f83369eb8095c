"""ONNX Runtime backend: the session factory (``make_session``), provider choice with a loud one-line
fallback, runner."""

from __future__ import annotations

import os
import sys
from typing import Mapping, Sequence

import numpy as np

from ..errors import ArtcamError, ModelError
from .base import Runner, TensorSpec

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
_PROVIDER = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(double)": np.dtype(np.float64),
    "tensor(bool)": np.dtype(np.bool_),
}


_SAID: set[str] = set()


def _ort():
    import onnxruntime

    return onnxruntime


def tensorrt_ep_available() -> bool:
    return "TensorrtExecutionProvider" in _ort().get_available_providers()


def provider_chain(device: str, trt_options: Mapping[str, object] | None = None) -> list:
    """Providers to try for ``device``, best first; auto = TensorRT, then CUDA, then CPU."""
    if device not in DEVICES:
        raise ArtcamError(f"unknown device {device!r}", f"use one of {', '.join(DEVICES)}")
    order = {"auto": ["tensorrt", "cuda", "cpu"], "tensorrt": ["tensorrt", "cuda", "cpu"],
             "cuda": ["cuda", "cpu"], "cpu": ["cpu"]}[device]
    chain: list = []
    for d in order:
        p = _PROVIDER[d]
        chain.append((p, dict(trt_options)) if d == "tensorrt" and trt_options else p)
    return chain


def _provider_name(p) -> str:
    return p[0] if isinstance(p, tuple) else p


OPT_LEVELS = ("disable", "basic", "extended", "all")


def session_options(threads: int = 0, opt_level: str = "all", spin: bool = False):
    """The ``SessionOptions`` every artcam session uses (runtime, export checks, benchmarks).

    ``threads``: intra-op threads (0 = ONNX Runtime's default); ``opt_level``: one of ``OPT_LEVELS``;
    ``spin``: let idle intra-op threads spin (off by default, see below).
    """
    ort = _ort()
    levels = dict(zip(OPT_LEVELS, (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    )))
    if opt_level not in levels:
        raise ArtcamError(f"unknown graph optimisation level {opt_level!r}", f"use one of {', '.join(levels)}")
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[opt_level]
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if not spin:
        # Idle intra-op threads sleep instead of spinning: in a live pipeline the capture and
        # output threads need those cores (measured in the README: 3x faster end to end on 2 cores).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def make_session(
    model: str | bytes | os.PathLike,
    *,
    threads: int = 0,
    opt_level: str = "all",
    providers: Sequence | None = None,
    spin: bool = False,
    options=None,
):
    """An ``onnxruntime.InferenceSession`` with :func:`session_options`; CPU unless ``providers`` says.
    ``options``: a :func:`session_options` result the caller added to (profiling, say) instead.

    The one place artcam opens an ONNX Runtime session: loading a model for inference goes through
    :class:`SessionFromOnnx` (provider choice, fallback message), everything else (export checks,
    benchmarks, shape probes) calls this directly. ONNX Runtime's own exceptions pass through.
    """
    ort = _ort()
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    so = options if options is not None else session_options(threads, opt_level, spin)
    return ort.InferenceSession(model, sess_options=so,
                                providers=list(providers) if providers is not None else ["CPUExecutionProvider"])


class SessionFromOnnx:
    """Lazy loader: calling it builds an ``InferenceSession`` on the first provider that works."""

    def __init__(
        self,
        model: str | bytes | os.PathLike,
        device: str = "auto",
        threads: int = 0,
        opt_level: str = "all",
        trt_options: Mapping[str, object] | None = None,
        log=None,
        spin: bool = False,
    ):
        self.model = model
        self.device = device
        self.threads = threads
        self.opt_level = opt_level
        self.trt_options = trt_options
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.spin = spin
        self.fallback_reason = ""

    def __call__(self):
        ort = _ort()
        chain = provider_chain(self.device, self.trt_options)
        available = set(ort.get_available_providers())
        wanted = _provider_name(chain[0])
        usable = [p for p in chain if _provider_name(p) in available]
        skipped = [_provider_name(p) for p in chain if _provider_name(p) not in available]
        try:
            sess = make_session(self.model, threads=self.threads, opt_level=self.opt_level, providers=usable,
                                spin=self.spin)
        except ArtcamError:
            raise
        except Exception as e:  # onnxruntime raises its own exception types for bad models
            what = self.model if isinstance(self.model, (str, os.PathLike)) else "model bytes"
            msg = str(e).strip().splitlines()[0][:300]
            raise ModelError(f"ONNX Runtime cannot load {what}: {msg}", "check the file or re-export it") from e
        # Trust get_providers(): a listed provider may still fail to initialise (no GPU, no CUDA libs).
        got = sess.get_providers()[0]
        if got != wanted and self.device != "cpu":
            why = f"{', '.join(skipped)} not in this onnxruntime build" if skipped else f"{wanted} failed to initialise"
            self.fallback_reason = f"{why}; running on {got}"
            line = f"artcam: device {self.device}: fell back to {got} ({why})"
            # said when a GPU was asked for by name; "auto" on a machine without one is the normal case
            if self.device != "auto" and line not in _SAID:  # once per process, not once per model
                _SAID.add(line)
                self.log(line)
        return sess


class OrtRunner(Runner):
    """Runs an ONNX model with ONNX Runtime; ``device`` says which provider actually runs it."""

    name = "onnxruntime"

    def __init__(self, session_loader: SessionFromOnnx):
        super().__init__()
        self.loader = session_loader
        self.session = None
        self._inputs: list[TensorSpec] = []
        self._outputs: list[TensorSpec] = []
        self._output_names: list[str] = []

    def activate_impl(self) -> None:
        self.session = self.loader()
        provider = self.session.get_providers()[0]
        self.device = {v: k for k, v in _PROVIDER.items()}.get(provider, provider)
        self._inputs = [self._spec(i) for i in self.session.get_inputs()]
        self._outputs = [self._spec(o) for o in self.session.get_outputs()]
        self._output_names = [o.name for o in self._outputs]

    @staticmethod
    def _spec(node) -> TensorSpec:
        dtype = _ORT_DTYPES.get(node.type)
        if dtype is None:
            raise ModelError(f"tensor {node.name!r} has unsupported type {node.type}")
        return TensorSpec(node.name, tuple(node.shape), dtype)

    def deactivate_impl(self) -> None:
        self.session = None

    def input_specs_impl(self) -> list[TensorSpec]:
        return self._inputs

    def output_specs_impl(self) -> list[TensorSpec]:
        return self._outputs

    def infer_impl(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(self._output_names, dict(feeds))
        return dict(zip(self._output_names, outs))

    @property
    def providers(self) -> Sequence[str]:
        return self.session.get_providers() if self.session else []
