"""FP16 and INT8 (static post-training quantisation, Q/DQ) versions of an ONNX model.

FP16 uses ONNX Runtime's own converter (``onnxruntime.transformers.float16``, shipped with
onnxruntime; no extra package). Ops whose FP16 error grows with the data (normalisation, softmax,
reductions, exp/log/pow) can be kept in FP32; ``choose_fp16`` measures both variants and keeps
all-FP16 unless the block list is measurably needed.

INT8 uses ``onnxruntime.quantization.quantize_static`` with Q/DQ format and per-channel weights,
calibrated on real images through the model's own preprocessing (see ``parity.make_feeds``).
Q/DQ ONNX runs on ONNX Runtime CPU and is what TensorRT 10/11 want for INT8 (explicit quantisation).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from artcam.runtime.errors import ArtcamError
from artcam.runtime.fileio import work_dir

SENSITIVE_OPS = (
    "InstanceNormalization", "LayerNormalization", "GroupNormalization", "BatchNormalization",
    "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp",
    "Pow", "Exp", "Log", "Sqrt", "Reciprocal", "Erf",
)
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


def _load(onnx_bytes: bytes):
    import onnx

    return onnx.load_from_string(onnx_bytes)


def op_types(onnx_bytes: bytes) -> set[str]:
    return {n.op_type for n in _load(onnx_bytes).graph.node}


def to_fp16(onnx_bytes: bytes, keep_fp32_ops: Sequence[str] = ()) -> bytes:
    """FP16 weights and activations; inputs/outputs stay FP32 so callers feed the same arrays."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = convert_float_to_float16(
        _load(onnx_bytes), keep_io_types=True, op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(keep_fp32_ops),
    )
    return model.SerializeToString()


def emulate_fp16(onnx_bytes: bytes, keep_fp32_ops: Sequence[str] = ()) -> bytes:
    """An FP32 graph that rounds what an FP16 graph would store: weights, inputs and every op output
    (except ops kept in FP32) go through Cast(FP16) -> Cast(FP32). Arithmetic inside an op stays FP32.

    Needed because ORT's CPU provider runs an FP16 graph by casting runs of ops without FP16 kernels
    back to FP32 *and dropping the casts in between*, which hides overflow and rounding.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = _load(onnx_bytes)
    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    keep = set(keep_fp32_ops)
    types = {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.input) + list(g.output)}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    fp16_used = {i for n in g.node if n.op_type not in keep for i in n.input}
    for init in g.initializer:
        if init.data_type == TensorProto.FLOAT and init.name in fp16_used:
            a = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(a.astype(np.float16).astype(np.float32), init.name))
    rename: dict[str, str] = {}
    new_nodes = []

    def rounded(name: str) -> list:
        r = name + "__fp16r"
        rename[name] = r
        return [helper.make_node("Cast", [name], [name + "__h"], to=TensorProto.FLOAT16),
                helper.make_node("Cast", [name + "__h"], [r], to=TensorProto.FLOAT)]

    for inp in g.input:
        if types.get(inp.name) == TensorProto.FLOAT and inp.name in fp16_used:
            new_nodes += rounded(inp.name)
    for n in g.node:
        for k, i in enumerate(n.input):
            if i in rename:
                n.input[k] = rename[i]
        new_nodes.append(n)
        for o in n.output:
            # FP16 ops store FP16; an FP32 op's output is cast to FP16 where an FP16 op reads it.
            feeds_fp16 = any(c.op_type not in keep for c in consumers.get(o, []))
            if types.get(o) == TensorProto.FLOAT and (n.op_type not in keep or feeds_fp16):
                new_nodes += rounded(o)
    outs = {o.name for o in g.output}
    for o in list(outs):
        if o in rename:  # graph outputs keep their names: route the rounded value to them
            for node in new_nodes:
                for k, x in enumerate(node.output):
                    if x == o:
                        node.output[k] = o + "__raw"
                for k, x in enumerate(node.input):
                    if x == o:
                        node.input[k] = o + "__raw"
            for node in new_nodes:
                for k, x in enumerate(node.output):
                    if x == rename[o]:
                        node.output[k] = o
            for node in new_nodes:
                for k, x in enumerate(node.input):
                    if x == rename[o]:
                        node.input[k] = o
    del g.node[:]
    g.node.extend(new_nodes)
    return model.SerializeToString()


@dataclass
class Fp16Choice:
    onnx: bytes
    variant: str  # "all-fp16" | "sensitive-ops-fp32"
    kept_fp32: list[str]
    measured: dict[str, dict] = field(default_factory=dict)  # variant -> Comparison.to_dict()


def choose_fp16(onnx_bytes: bytes, feeds, refs, meta, tol, log=print) -> Fp16Choice:
    """Measure all-FP16 against FP16 with sensitive ops in FP32; keep the first variant that passes.

    Error is measured with :func:`emulate_fp16` on ORT CPU (FP16 rounding of weights and of every
    tensor between ops, FP32 arithmetic inside ops); GPU kernels that also accumulate in FP16 can
    add error on top. The real FP16 graph is also run once to prove it loads.
    """
    from artcam.runtime.backends.onnxrt import make_session

    from .parity import compare, run_ort

    present = sorted(op_types(onnx_bytes) & set(SENSITIVE_OPS))
    variants = [("all-fp16", [])] + ([("sensitive-ops-fp32", present)] if present else [])
    results = []
    for name, keep in variants:
        data = to_fp16(onnx_bytes, keep)
        run_ort(make_session(data), feeds[:1])  # the real FP16 graph must load and run
        got = run_ort(make_session(emulate_fp16(onnx_bytes, keep)), feeds)
        cmp = compare(f"FP16 ({name}, emulated FP16 storage) vs FP32", refs, got, meta, tol)
        for line in cmp.lines():
            log(line)
        results.append((name, keep, data, cmp))
    for name, keep, data, cmp in results:
        if cmp.passed:
            chosen = (name, keep, data)
            break
    else:
        chosen = results[-1][:3]
    return Fp16Choice(chosen[2], chosen[0], list(chosen[1]), {n: c.to_dict() for n, _, _, c in results})


# --- INT8 --------------------------------------------------------------------------------------


def _reader_base():
    from onnxruntime.quantization import CalibrationDataReader

    return CalibrationDataReader


class FeedReader(_reader_base()):
    """ORT CalibrationDataReader over a list of feed dicts."""

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]]):
        self.feeds = list(feeds)
        self.i = 0

    def get_next(self):
        if self.i >= len(self.feeds):
            return None
        self.i += 1
        return dict(self.feeds[self.i - 1])

    def rewind(self) -> None:
        self.i = 0


@dataclass
class Int8Options:
    method: str = "percentile"  # minmax | entropy | percentile
    percentile: float = 99.999
    per_channel: bool = True
    symmetric_activations: bool = False  # True for TensorRT (it needs zero-point 0)
    # 7-bit weights: x86 CPUs without VNNI (AVX2, plain AVX-512) multiply u8 x s8 pairs with VPMADDUBSW,
    # whose 16-bit sums saturate on full-range weights. Measured on an AVX2 EPYC: a tiny generator's INT8
    # fell from 52.5 dB (7-bit) to 27.7 dB (8-bit) against FP32 (tests/export/test_export_cli.py). TensorRT
    # and VNNI/ARM-dot-product kernels do not saturate; they keep full range.
    reduce_range: bool = True
    exclude_first_last: bool = False  # keep the first conv and the last matmul/conv in FP32
    exclude_nodes: Sequence[str] = ()
    exclude_op_types: Sequence[str] = ()
    keep_activations: bool = False  # keep ReLU/Clip with their own Q/DQ instead of folding them into the range
    # Convolutions with fewer outputs than this get zero filters up to it and a Slice back (0 = never):
    # ONNX Runtime's CPU QLinearConv is slow off multiples of 16 (export/channel_pad.py has the figures).
    pad_conv_outputs: int = 16
    padded_nodes: list = field(default_factory=list)  # filled in by quantize_int8
    # Zero Pad nodes in front of a Conv become the Conv's own padding (export/pad_fold.py: exact).
    fold_pads: bool = True
    folded_pads: list = field(default_factory=list)  # filled in by quantize_int8
    # Convolutions reading at most this many channels (an image stem: 3) stay FP32 (0: quantise them too).
    # ORT's INT8 kernels are slow there: stylizer_nano's full-resolution 3->32 stem took 13-15 ms in INT8
    # against 2-3 ms in FP32 (model 1.50x -> 1.68x FP32, 1 thread); classifier_lite0's 224-px stem gains
    # nothing (2.02x -> 1.94x), hence off by default (export --int8-fp32-stem).
    fp32_stem_channels: int = 0
    fp32_stem_nodes: list = field(default_factory=list)  # filled in by quantize_int8
    keep_fp32: int = 0  # leave the nodes of the N worst-quantising activations in FP32
    sensitivity_samples: int = 16
    kept_fp32_nodes: list = field(default_factory=list)  # filled in by quantize_int8


def first_last_nodes(onnx_bytes: bytes) -> list[str]:
    """Names of the first and last weight-carrying nodes (Conv/Gemm/MatMul) in graph order."""
    g = _load(onnx_bytes).graph
    heavy = [n.name for n in g.node if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")]
    return sorted(set(heavy[:1] + heavy[-1:]))


def _ensure_names(model) -> None:
    seen = set()
    for i, n in enumerate(model.graph.node):
        if not n.name or n.name in seen:
            n.name = f"{n.op_type}_{i}"
        seen.add(n.name)


def _preprocess(onnx_bytes: bytes, tmp: str) -> str:
    """ORT's recommended pre-quantisation pass (shape inference, constant folding, BN folding)."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = _load(onnx_bytes)
    _ensure_names(model)
    src, pre = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "pre.onnx")
    onnx.save(model, src)
    try:
        quant_pre_process(src, pre, skip_symbolic_shape=True)
        return pre
    except Exception:  # an optimisation only: quantise the original if it fails
        return src


def quantize_int8(onnx_bytes: bytes, feeds: Sequence[Mapping[str, np.ndarray]], opts: Int8Options,
                  log=print) -> bytes:
    """Static PTQ to a Q/DQ ONNX; weights int8 per channel, activations calibrated on ``feeds``.

    ``opts.method`` is updated when a histogram method had to fall back to minmax. With
    ``opts.keep_fp32 > 0`` the quantised model is analysed (:func:`layer_sensitivity`) and the nodes
    producing the ``keep_fp32`` activations with the worst quantisation SQNR are left in FP32.
    """
    if opts.method not in CALIBRATION_METHODS:
        raise ArtcamError(f"unknown calibration method {opts.method!r}", f"use one of {', '.join(CALIBRATION_METHODS)}")
    if not feeds:
        raise ArtcamError("INT8 calibration needs data", "pass --data DIR with real images")
    with work_dir("int8") as tmp_path:
        tmp = str(tmp_path)
        pre = _preprocess(onnx_bytes, tmp)
        pre = _rewrite_for_int8(pre, opts, tmp)
        q = _quantize_file(pre, feeds, opts, tmp, log)
        if opts.keep_fp32 > 0:
            worst = layer_sensitivity(pre, q, feeds[: opts.sensitivity_samples], tmp)
            opts.kept_fp32_nodes = [n for r in worst[: opts.keep_fp32] for n in r[0].split("+")]
            for node, tensor, drop, sqnr in worst[: opts.keep_fp32]:
                log(f"artcam: keeping {node} in FP32 (SQNR vs FP32 falls {drop:.1f} dB across it, to {sqnr:.1f} dB)")
            q = _quantize_file(pre, feeds, opts, tmp, log)
        return Path(q).read_bytes()


def _rewrite_for_int8(pre: str, opts: Int8Options, tmp: str) -> str:
    """Exact graph rewrites that let ONNX Runtime's INT8 kernels run the model fast (see the modules)."""
    import onnx

    from .channel_pad import pad_conv_outputs
    from .pad_fold import fold_pads_into_convs

    model = onnx.load(pre)
    if opts.fold_pads:
        opts.folded_pads = fold_pads_into_convs(model)
    if opts.pad_conv_outputs and not opts.symmetric_activations:  # TensorRT picks its own kernels
        opts.padded_nodes = pad_conv_outputs(model, opts.pad_conv_outputs)
    if not (opts.folded_pads or opts.padded_nodes):
        return pre
    out = os.path.join(tmp, "rewritten.onnx")
    onnx.save(model, out)
    return out


def _stem_convs(graph, max_channels: int) -> list[str]:
    """Names of the ungrouped Convs whose weights (an initializer) read at most ``max_channels`` channels."""
    dims = {i.name: list(i.dims) for i in graph.initializer}
    out = []
    for n in graph.node:
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        w = dims.get(n.input[1]) if n.op_type == "Conv" and len(n.input) > 1 else None
        if w is not None and len(w) >= 2 and group == 1 and w[1] <= max_channels:
            out.append(n.name)
    return out


def _quantize_file(pre: str, feeds, opts: Int8Options, tmp: str, log) -> str:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[opts.method]
    extra = {
        "ActivationSymmetric": bool(opts.symmetric_activations),
        "WeightSymmetric": True,
        "CalibPercentile": float(opts.percentile),
        "QDQKeepRemovableActivations": bool(opts.keep_activations),
    }
    graph = onnx.load(pre).graph
    names = {n.name for n in graph.node}
    exclude = [n for n in list(opts.exclude_nodes) + list(opts.kept_fp32_nodes) if n in names]
    if opts.exclude_first_last:
        exclude += [n for n in first_last_nodes(Path(pre).read_bytes()) if n not in exclude]
    if opts.exclude_op_types:
        exclude += [n.name for n in graph.node if n.op_type in opts.exclude_op_types]
    if opts.fp32_stem_channels and not opts.symmetric_activations:
        opts.fp32_stem_nodes = _stem_convs(graph, opts.fp32_stem_channels)
        exclude += [n for n in opts.fp32_stem_nodes if n not in exclude]
    dst = os.path.join(tmp, "int8.onnx")

    def run(m):
        quantize_static(
            pre, dst, FeedReader(feeds), quant_format=QuantFormat.QDQ, per_channel=opts.per_channel,
            reduce_range=opts.reduce_range,
            activation_type=QuantType.QInt8 if opts.symmetric_activations else QuantType.QUInt8,
            weight_type=QuantType.QInt8, nodes_to_exclude=exclude or None, calibrate_method=m,
            extra_options=extra,
        )

    try:
        run(method)
    except ValueError as e:
        # Histogram calibrators fail on tensors that are constant over the calibration set
        # ("Too many bins for data range"); MinMax handles them.
        if method == CalibrationMethod.MinMax or "bins" not in str(e):
            raise
        log(f"artcam: {opts.method} calibration failed ({e}); falling back to minmax")
        opts.method = "minmax"
        run(CalibrationMethod.MinMax)
    return dst


def layer_sensitivity(float_path: str, qdq_path: str, feeds, tmp: str) -> list[tuple[str, str, float, float]]:
    """(node[+folded activation], output tensor, SQNR drop dB, output SQNR dB), the most harmful first.

    SQNR compares each tensor of the float model with the same tensor in the Q/DQ model (ORT's
    qdq_loss_debug "xmodel_err", accumulated error). A node's harm is how much SQNR falls from its
    worst input to its output. (ORT's per-tensor "qdq_err" misleads where the quantiser folded a
    ReLU/Clip into the preceding Q: it then compares pre- and post-activation values.)
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    fa, qa = os.path.join(tmp, "float_aug.onnx"), os.path.join(tmp, "qdq_aug.onnx")
    modify_model_output_intermediate_tensors(float_path, fa)
    modify_model_output_intermediate_tensors(qdq_path, qa)
    f_act = collect_activations(fa, FeedReader(feeds))
    q_act = collect_activations(qa, FeedReader(feeds))
    errors = compute_activation_error(create_activation_matching(q_act, f_act))
    xerr = {t: float(e["xmodel_err"]) for t, e in errors.items() if "xmodel_err" in e and np.isfinite(e["xmodel_err"])}
    graph = onnx.load(float_path).graph
    producer = {o: n for n in graph.node for o in n.output}
    weights = {i.name for i in graph.initializer}
    memo: dict[str, float] = {}

    def sqnr_in(t: str, depth: int = 0) -> float:
        """SQNR of ``t``, or of its nearest measured ancestors where the Q/DQ graph lost its name."""
        if t in xerr:
            return xerr[t]
        if t in memo:
            return memo[t]
        n = producer.get(t)
        ins = [i for i in (n.input if n is not None else []) if i and i not in weights]
        memo[t] = min((sqnr_in(i, depth + 1) for i in ins), default=100.0) if depth < 8 else 100.0
        return memo[t]

    rows = []
    for n in graph.node:
        outs = [o for o in n.output if o in xerr]
        if not outs:
            continue
        base = min(100.0, min((sqnr_in(i) for i in n.input if i and i not in weights), default=100.0))
        name = n.name
        if n.op_type in ("Relu", "Clip") and n.input[0] not in xerr and n.input[0] in producer:
            # the quantiser folded this activation into its producer's output: they go together
            name = f"{producer[n.input[0]].name}+{n.name}"
        rows.append((name, outs[0], base - xerr[outs[0]], xerr[outs[0]]))
    return sorted(rows, key=lambda r: -r[2])
