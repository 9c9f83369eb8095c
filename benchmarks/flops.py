"""FLOPs of an ONNX graph at a given input size, from the shapes ONNX shape inference derives.

Convention: FLOPs = 2 x multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul (bias adds,
activations, norms and resizes are not counted; for conv nets they are a few percent). Grouped and
depthwise convolutions count Cin/groups inputs per output. ``onnx`` is optional: without it the
count is n/a with the reason. Shapes that inference cannot derive (a Resize whose scales are
computed at run time, say) are read by running the graph once in ONNX Runtime on zero inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

COUNTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass
class FlopCount:
    flops: int | None  # None: not computed (reason says why)
    by_op: dict[str, int] = field(default_factory=dict)
    nodes: int = 0
    unknown: list[str] = field(default_factory=list)  # counted ops whose shapes stayed unknown
    reason: str = ""

    @property
    def gflops(self) -> float | None:
        return None if self.flops is None else self.flops / 1e9

    def to_json(self) -> dict:
        return {"flops": self.flops, "gflops": self.gflops, "by_op": self.by_op, "counted_nodes": self.nodes,
                "unknown_nodes": self.unknown, "reason": self.reason}


def _prod(xs: Sequence[int]) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _static_shape(vi) -> tuple[int, ...] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            return None
    return tuple(dims)


def _set_input_shapes(model, input_shapes: Mapping[str, Sequence[int]]) -> None:
    for inp in model.graph.input:
        if inp.name not in input_shapes:
            continue
        shape = list(input_shapes[inp.name])
        dims = inp.type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise ValueError(f"input {inp.name!r} has {len(dims)} dims, got shape {shape}")
        for d, v in zip(dims, shape):
            d.Clear()
            d.dim_value = int(v)


def _probe_shapes(model, names: list[str], input_shapes, dtypes) -> dict[str, tuple[int, ...]]:
    """Run the graph once with ``names`` exposed as outputs and read their shapes."""
    import onnx

    from artcam.runtime.backends.onnxrt import make_session

    m = onnx.ModelProto()
    m.CopyFrom(model)
    existing = {o.name for o in m.graph.output}
    elem = {vi.name: vi.type.tensor_type.elem_type for vi in list(m.graph.value_info) + list(m.graph.input)}
    for n in names:
        if n not in existing:
            m.graph.output.append(onnx.helper.make_tensor_value_info(n, elem.get(n, onnx.TensorProto.FLOAT), None))
    sess = make_session(m.SerializeToString(), opt_level="disable")  # keep the tensors we asked for
    feeds = {}
    for i in sess.get_inputs():
        if i.name in input_shapes:
            feeds[i.name] = np.zeros(input_shapes[i.name], dtype=dtypes.get(i.name, np.float32))
    outs = sess.run(names, feeds)
    return {n: tuple(int(x) for x in o.shape) for n, o in zip(names, outs)}


def count_flops(model_bytes: bytes, input_shapes: Mapping[str, Sequence[int]],
                input_dtypes: Mapping[str, np.dtype] | None = None) -> FlopCount:
    """FLOPs of one inference with inputs of ``input_shapes`` (batch included)."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:
        return FlopCount(None, reason="the onnx package is not installed (pip install onnx)")
    try:
        model = onnx.load_model_from_string(model_bytes)
        _set_input_shapes(model, input_shapes)
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as e:  # onnx raises several exception types for malformed graphs
        return FlopCount(None, reason=f"shape inference failed: {str(e).splitlines()[0][:200]}")
    g = inferred.graph
    shapes: dict[str, tuple[int, ...] | None] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shapes[vi.name] = _static_shape(vi)
    for init in g.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    for node in g.node:  # Constant nodes feeding MatMul/Gemm weights
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    shapes[node.output[0]] = tuple(int(d) for d in a.t.dims)

    counted = [n for n in g.node if n.op_type in COUNTED_OPS]
    missing = sorted({t for n in counted for t in (list(n.input[:2]) + [n.output[0]])
                      if t and shapes.get(t) is None})
    if missing:
        try:
            shapes.update(_probe_shapes(inferred, missing, input_shapes, dict(input_dtypes or {})))
        except Exception:  # best effort: the nodes stay "unknown" and are listed
            pass

    result = FlopCount(0)
    for n in counted:
        try:
            f = _node_flops(n, shapes)
        except (KeyError, TypeError, ValueError, IndexError):
            f = None
        if f is None:
            result.unknown.append(n.name or n.output[0])
            continue
        result.flops += f
        result.by_op[n.op_type] = result.by_op.get(n.op_type, 0) + f
        result.nodes += 1
    if result.unknown:
        result.reason = f"{len(result.unknown)} of {len(counted)} counted nodes had unknown shapes (not counted)"
    return result


def _attr(node, name: str, default):
    for a in node.attribute:
        if a.name == name:
            if a.type == a.INT:
                return a.i
            if a.type == a.INTS:
                return list(a.ints)
    return default


def _node_flops(node, shapes) -> int | None:
    op = node.op_type
    if op == "Conv":
        w, y = shapes.get(node.input[1]), shapes.get(node.output[0])
        if w is None or y is None:
            return None
        # W: (Cout, Cin/groups, k...), Y: (N, Cout, spatial...). Cin/groups already in W.
        return 2 * y[0] * y[1] * _prod(y[2:]) * w[1] * _prod(w[2:])
    if op == "ConvTranspose":
        x, w = shapes.get(node.input[0]), shapes.get(node.input[1])
        if x is None or w is None:
            return None
        groups = int(_attr(node, "group", 1))
        # W: (Cin, Cout/groups, k...): every input pixel scatters into Cout/groups x k outputs.
        return 2 * x[0] * x[1] * _prod(x[2:]) * w[1] * _prod(w[2:]) if groups >= 1 else None
    if op == "Gemm":
        a, y = shapes.get(node.input[0]), shapes.get(node.output[0])
        if a is None or y is None:
            return None
        k = a[0] if _attr(node, "transA", 0) else a[1]
        return 2 * y[0] * y[1] * k
    if op == "MatMul":
        a, y = shapes.get(node.input[0]), shapes.get(node.output[0])
        if a is None or y is None:
            return None
        return 2 * _prod(y) * a[-1]
    return None
