"""PyTorch -> ONNX with artcam metadata and a parity check against PyTorch.

Uses the TorchScript exporter (``dynamo=False``): it handles our conv nets with dynamic batch and
spatial axes in well under a second; the dynamo exporter needs per-model shape constraints.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from artcam.runtime.backends.onnxrt import make_session
from artcam.runtime.errors import ModelError
from artcam.runtime.modelfile import ModelMeta, write_model_file

from . import parity

DEFAULT_OPSET = 17


@dataclass
class ParityReport:
    """ONNX Runtime against PyTorch on the same inputs: a view of :class:`parity.Comparison`
    keyed by output name, for callers that read ``outputs[name]["max_abs"]``."""

    outputs: dict[str, dict[str, float]] = field(default_factory=dict)
    passed: bool = True
    comparison: "parity.Comparison | None" = None

    def lines(self) -> list[str]:
        return self.comparison.lines() if self.comparison is not None else []


def to_onnx_bytes(
    model,
    example_inputs: Mapping[str, "object"],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    opset: int = DEFAULT_OPSET,
) -> bytes:
    """Trace ``model`` on named example inputs and return the serialized ONNX model."""
    import torch

    if opset < 17:
        raise ModelError(f"opset {opset} is too old", "use opset 17 or newer")
    model = model.eval()
    buf = io.BytesIO()
    names = list(example_inputs)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            tuple(example_inputs[n] for n in names),
            buf,
            input_names=names,
            output_names=list(output_names),
            dynamic_axes=dict(dynamic_axes or {}),
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return buf.getvalue()


def simplify_onnx(data: bytes) -> bytes:
    """Constant folding and redundant-op removal with onnxslim; falls back to the input if it fails.

    The result must still pass the parity check, so a bad simplification cannot ship silently.
    """
    import onnx

    try:
        import onnxslim
    except ImportError as e:
        raise ModelError("--simplify needs onnxslim", "pip install onnxslim") from e
    model = onnx.load_from_string(data)
    props = [(p.key, p.value) for p in model.metadata_props]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            slim = onnxslim.slim(model)
    except Exception as e:  # onnxslim raises assorted errors on graphs it cannot handle
        warnings.warn(f"onnxslim failed ({e}); keeping the unsimplified graph")
        return data
    if slim is None:
        return data
    del slim.metadata_props[:]
    for k, v in props:
        slim.metadata_props.add(key=k, value=v)
    return slim.SerializeToString()


def freeze_style(data: bytes, meta: ModelMeta, style: str) -> tuple[bytes, ModelMeta]:
    """A single-style model: the style input becomes a constant one-hot and is folded away.

    The style-conditioned affines (``style @ G``) then fold into the convolutions, which is what
    INT8 needs: a multi-style graph keeps per-frame QLinearMul/QLinearAdd for them, the frozen one
    is plain convolutions.
    """
    import dataclasses

    import onnx
    from onnx import numpy_helper

    if meta is None or meta.style is None:
        raise ModelError("--freeze-style needs a stylizer with a style input in its metadata")
    names = list(meta.style.styles)
    if style not in names and not (style.isdigit() and int(style) < len(names)):
        raise ModelError(f"unknown style {style!r}", f"choose one of {', '.join(names)} (or its index)")
    idx = names.index(style) if style in names else int(style)
    model = onnx.load_from_string(data)
    graph_in = [i for i in model.graph.input if i.name == meta.style.name]
    if not graph_in:
        raise ModelError(f"the graph has no input {meta.style.name!r}")
    model.graph.input.remove(graph_in[0])
    onehot = np.zeros((1, len(names)), np.float32)
    onehot[0, idx] = 1.0
    model.graph.initializer.append(numpy_helper.from_array(onehot, meta.style.name))
    frozen = simplify_onnx(model.SerializeToString())
    new_meta = dataclasses.replace(
        meta, style=None, name=f"{meta.name}_{names[idx]}",
        description=(meta.description + f" Frozen to style {names[idx]!r}.").strip(),
    )
    return frozen, new_meta


def check_onnx(data: bytes, where: str = "model") -> None:
    """Run onnx.checker: a clear error up front instead of a failure deep inside a converter."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as e:
        msg = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ModelError(f"{where} fails the ONNX checker: {msg}", "re-export it, or fix the graph") from e


def check_parity(
    model,
    onnx_bytes: bytes,
    inputs: Sequence[Mapping[str, np.ndarray]],
    atol: float = 1e-4,
) -> ParityReport:
    """Run PyTorch and ONNX Runtime (CPU) on each input dict and compare every output."""
    sess = make_session(onnx_bytes)
    names = [o.name for o in sess.get_outputs()]
    cmp = parity.compare("ONNX Runtime vs PyTorch", parity.run_torch(model, inputs, names),
                         parity.run_ort(sess, inputs), None, parity.Tolerance(max_abs=atol))
    outputs = {o.name: {k: v for k, v in {"max_abs": o.max_abs, "mean_abs": o.mean_abs, "atol": atol,
                                            "psnr": o.psnr, "top1_agree": o.top1_agree}.items() if v is not None}
               for o in cmp.outputs}
    return ParityReport(outputs, cmp.passed, cmp)


def export_model(
    model,
    example_inputs: Mapping[str, "object"],
    output_names: Sequence[str],
    meta: ModelMeta,
    path: str | Path,
    *,
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    verify_inputs: Sequence[Mapping[str, np.ndarray]] | None = None,
    atol: float = 1e-4,
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
    simplify: bool = False,
) -> ParityReport:
    """Export, check parity on ``verify_inputs`` (default: the example), then write atomically.

    Refuses to write a model that fails the tolerance unless ``verify=False``.
    """
    data = to_onnx_bytes(model, example_inputs, output_names, dynamic_axes, opset)
    if simplify:
        data = simplify_onnx(data)
    feeds = verify_inputs or [{k: v.detach().cpu().numpy() for k, v in example_inputs.items()}]
    report = check_parity(model, data, feeds, atol=atol)
    if verify and not report.passed:
        raise ModelError(
            "ONNX export differs from PyTorch beyond tolerance:\n" + "\n".join(report.lines()),
            "investigate the failing output, or pass --no-verify to write it anyway",
        )
    write_model_file(path, data, meta)
    return report
