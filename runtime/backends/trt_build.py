"""Build TensorRT engines from ONNX with the TensorRT Python API (10.x and 11.x).

Imports neither torch nor onnx (onnx only to look for FP16 tensors, when installed). The runtime's
TensorRT backend builds-and-caches engines with it; ``artcam export --format engine`` builds with it too.

Two API generations:
- TensorRT 10.x ("weakly typed" by default): precision comes from builder flags. FP16 sets
  ``BuilderFlag.FP16``; INT8 takes a Q/DQ ONNX (explicit quantisation from ``precision.quantize_int8``)
  and sets ``BuilderFlag.INT8`` (+FP16 for the layers left unquantised). No implicit-quantisation
  calibrators: they are deprecated in 10.x and removed in 11.x.
- TensorRT 11.x: networks are always strongly typed (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``);
  FP16/INT8 builder flags and calibrators no longer exist. Precision is whatever the ONNX says: an FP16
  ONNX (``precision.to_fp16``) builds an FP16 engine, a Q/DQ ONNX an INT8 one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import ArtcamError
from .engine_file import (
    PRECISIONS,
    EngineHeader,
    Profile,
    onnx_digest,
    validate_profile,
)


def import_trt():
    """``import tensorrt``, or a one-line error saying what to install."""
    try:
        import tensorrt
    except ImportError as e:
        raise ArtcamError("TensorRT is not installed (`import tensorrt` failed)",
                          "install TensorRT 10+ on a machine with an NVIDIA GPU (pip install tensorrt), or use "
                          "ONNX Runtime (--format onnx / --backend onnxruntime)") from e
    return tensorrt


def trt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


@dataclass
class BuildOptions:
    precision: str = "fp32"  # fp32 | fp16 | int8
    profiles: Sequence[Profile] = ()
    workspace_mb: int = 2048
    timing_cache: str | os.PathLike | None = None
    version_compatible: bool = False
    hardware_compatible: bool = False
    strongly_typed: bool | None = None  # None: 11.x yes, 10.x no
    builder_optimization_level: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _has_qdq(onnx_bytes: bytes) -> bool:
    # The op type is stored as a plain string in each NodeProto: a byte search is enough and needs no onnx.
    return b"QuantizeLinear" in onnx_bytes and b"DequantizeLinear" in onnx_bytes


def _has_fp16_tensors(onnx_bytes: bytes) -> bool:
    try:
        import onnx
    except ImportError:
        return False
    m = onnx.load_from_string(onnx_bytes)
    fp16 = onnx.TensorProto.FLOAT16
    return any(t.data_type == fp16 for t in m.graph.initializer) or any(
        v.type.tensor_type.elem_type == fp16 for v in list(m.graph.input) + list(m.graph.value_info)
    )


def _errors(parser) -> str:
    msgs = []
    for i in range(parser.num_errors):
        msgs.append(str(parser.get_error(i)).strip())
    return "; ".join(msgs) or "unknown parser error"


def _network_inputs(network) -> dict[str, tuple]:
    out = {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        out[t.name] = tuple(int(d) for d in t.shape)
    return out


def build_engine(
    onnx_bytes: bytes,
    options: BuildOptions,
    *,
    gpu: tuple[str, str],
    meta_props: Mapping[str, str] | None = None,
    trt=None,
    log: Callable[[str], None] = print,
) -> tuple[EngineHeader, bytes]:
    """Parse, configure and build; returns (header, plan). ``gpu`` is (name, compute capability)."""
    trt = trt or import_trt()
    if options.precision not in PRECISIONS:
        raise ArtcamError(f"unknown precision {options.precision!r}", f"use one of {', '.join(PRECISIONS)}")
    major = trt_major(trt)
    typed = options.strongly_typed if options.strongly_typed is not None else major >= 11
    if major >= 11 and not typed:
        raise ArtcamError("TensorRT 11 builds only strongly typed networks", "drop --weakly-typed")
    qdq = _has_qdq(onnx_bytes)
    if options.precision == "int8" and not qdq:
        raise ArtcamError(
            "an INT8 engine needs a Q/DQ (explicitly quantised) ONNX: implicit INT8 calibration is deprecated "
            "in TensorRT 10 and removed in 11",
            "pass --int8 --data DIR so artcam quantises the ONNX first",
        )
    if typed and options.precision == "fp16" and not _has_fp16_tensors(onnx_bytes):
        raise ArtcamError(
            "a strongly typed network runs in the precision of its ONNX; this ONNX is FP32",
            "pass --half so artcam converts the ONNX to FP16 first",
        )

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)) if typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        raise ArtcamError(f"TensorRT cannot parse the ONNX model: {_errors(parser)}",
                          "check the opset and ops against TensorRT's ONNX support matrix")
    inputs = _network_inputs(network)
    profiles = list(options.profiles)
    dynamic = any(d < 0 for s in inputs.values() for d in s)
    if dynamic and not profiles:
        raise ArtcamError(f"the model has dynamic inputs {inputs} and no optimisation profile",
                          "pass --imgsz H W or --min-shape/--opt-shape/--max-shape")
    for p in profiles:
        validate_profile(p, inputs)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(options.workspace_mb) << 20)
    if not typed:
        if options.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if options.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
    if options.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if options.hardware_compatible:
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    if options.builder_optimization_level is not None:
        config.builder_optimization_level = int(options.builder_optimization_level)
    for p in profiles:
        prof = builder.create_optimization_profile()
        for name, (mn, op, mx) in p.items():
            prof.set_shape(name, tuple(mn), tuple(op), tuple(mx))
        config.add_optimization_profile(prof)

    cache_path = Path(options.timing_cache) if options.timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path and cache_path.is_file() else b""
    timing_cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(timing_cache, ignore_mismatch=False)

    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ArtcamError("TensorRT failed to build the engine (see its log above)",
                          "try a larger --workspace, another precision, or check the profile shapes")
    log(f"built TensorRT {trt.__version__} engine ({options.precision}) in {time.perf_counter() - t0:.1f} s")
    if cache_path is not None:
        from ..fileio import atomic_write_bytes

        atomic_write_bytes(cache_path, bytes(config.get_timing_cache().serialize()))

    header = EngineHeader(
        trt_version=str(trt.__version__),
        gpu_name=gpu[0],
        compute_capability=gpu[1],
        precision=options.precision,
        profiles=tuple(profiles),
        onnx_hash=onnx_digest(onnx_bytes),
        meta=dict(meta_props or {}),
        strongly_typed=typed,
        version_compatible=options.version_compatible,
        hardware_compatible=options.hardware_compatible,
        workspace_mb=int(options.workspace_mb),
    )
    return header, bytes(plan)


def engine_precision_of(onnx_bytes: bytes, want_half: bool) -> str:
    """The engine precision an ONNX implies: Q/DQ -> int8; FP16 tensors or --half -> fp16; else fp32."""
    if _has_qdq(onnx_bytes):
        return "int8"
    if want_half or _has_fp16_tensors(onnx_bytes):
        return "fp16"
    return "fp32"

