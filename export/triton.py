"""A Triton Inference Server model repository entry: ``<repo>/<name>/config.pbtxt`` + ``1/model.*``.

Triton's ``max_batch_size > 0`` means the first dim of every tensor is the batch and is left out of
``dims``; a model whose batch dim is fixed gets ``max_batch_size: 0`` and full dims (and no dynamic
batching, which needs a batch dim). The config is written in protobuf text format by hand and read
back by :func:`parse_pbtxt` (tritonclient is not a dependency).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from artcam.runtime.errors import ArtcamError
from artcam.runtime.fileio import atomic_write_bytes, atomic_write_text

TRITON_TYPES = {
    "float32": "TYPE_FP32", "float16": "TYPE_FP16", "uint8": "TYPE_UINT8", "int8": "TYPE_INT8",
    "int32": "TYPE_INT32", "int64": "TYPE_INT64", "bool": "TYPE_BOOL", "float64": "TYPE_FP64",
}
PLATFORMS = {"onnx": ("onnxruntime_onnx", "model.onnx"), "plan": ("tensorrt_plan", "model.plan")}


@dataclass
class TensorDecl:
    name: str
    dtype: str  # numpy dtype name
    shape: tuple  # declared dims, -1 for dynamic (batch included)


def tensor_decls(onnx_bytes: bytes) -> tuple[list[TensorDecl], list[TensorDecl]]:
    from artcam.runtime.backends.onnxrt import make_session

    sess = make_session(onnx_bytes)

    def decl(v):
        from artcam.runtime.backends.onnxrt import _ORT_DTYPES

        dt = _ORT_DTYPES.get(v.type)
        if dt is None:
            raise ArtcamError(f"tensor {v.name!r} has type {v.type}, which this exporter cannot map to Triton")
        return TensorDecl(v.name, dt.name, tuple(d if isinstance(d, int) else -1 for d in v.shape))

    return [decl(v) for v in sess.get_inputs()], [decl(v) for v in sess.get_outputs()]


def _dims(shape: Sequence[int]) -> str:
    return "[ " + ", ".join(str(int(d)) for d in shape) + " ]"


def _quote(s: str) -> str:
    return json.dumps(s)


def make_config(
    name: str,
    kind: str,
    inputs: Sequence[TensorDecl],
    outputs: Sequence[TensorDecl],
    *,
    max_batch_size: int = 8,
    instance_count: int = 1,
    instance_kind: str = "KIND_GPU",
    queue_delay_us: int = 100,
    parameters: Mapping[str, str] | None = None,
) -> str:
    if kind not in PLATFORMS:
        raise ArtcamError(f"unknown Triton model kind {kind!r}", "use onnx or plan")
    batched = max_batch_size > 0 and all(t.shape and t.shape[0] == -1 for t in list(inputs) + list(outputs))
    mbs = max_batch_size if batched else 0
    lines = [f"name: {_quote(name)}", f"platform: {_quote(PLATFORMS[kind][0])}", f"max_batch_size: {mbs}"]
    for section, tensors in (("input", inputs), ("output", outputs)):
        lines.append(f"{section} [")
        for i, t in enumerate(tensors):
            dims = t.shape[1:] if batched else t.shape
            lines += ["  {", f"    name: {_quote(t.name)}", f"    data_type: {TRITON_TYPES[t.dtype]}",
                      f"    dims: {_dims(dims)}", "  }" + ("," if i < len(tensors) - 1 else "")]
        lines.append("]")
    if batched:
        lines += ["dynamic_batching {", f"  max_queue_delay_microseconds: {int(queue_delay_us)}", "}"]
    lines += ["instance_group [", "  {", f"    count: {int(instance_count)}", f"    kind: {instance_kind}", "  }", "]"]
    for k, v in sorted((parameters or {}).items()):
        lines += ["parameters {", f"  key: {_quote(k)}", f"  value: {{ string_value: {_quote(v)} }}", "}"]
    return "\n".join(lines) + "\n"


def write_triton_model(
    repo: str | os.PathLike,
    name: str,
    model_bytes: bytes,
    kind: str,
    onnx_bytes: bytes,
    *,
    max_batch_size: int = 8,
    instance_count: int = 1,
    instance_kind: str = "KIND_GPU",
    parameters: Mapping[str, str] | None = None,
    version: int = 1,
) -> Path:
    """Write ``<repo>/<name>/{config.pbtxt, <version>/model.onnx|model.plan}`` (each file atomically).

    ``onnx_bytes`` is the source graph, read for tensor names, types and dims (also for plans).
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ArtcamError(f"Triton model name {name!r} has characters Triton does not allow", "use letters, digits, _ . -")
    inputs, outputs = tensor_decls(onnx_bytes)
    text = make_config(name, kind, inputs, outputs, max_batch_size=max_batch_size, instance_count=instance_count,
                       instance_kind=instance_kind, parameters=parameters)
    folder = Path(repo) / name
    vdir = folder / str(version)
    vdir.mkdir(parents=True, exist_ok=True)
    for other in PLATFORMS.values():  # a previous export of the other kind would confuse Triton
        stale = vdir / other[1]
        if other[1] != PLATFORMS[kind][1] and stale.exists():
            stale.unlink()
    atomic_write_bytes(vdir / PLATFORMS[kind][1], model_bytes)
    atomic_write_text(folder / "config.pbtxt", text)
    return folder


# --- reading protobuf text format --------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:#[^\n]*\n\s*)*(?:("(?:[^"\\]|\\.)*")|([{}\[\]:,])|([^\s{}\[\]:,"#]+))')


def _tokens(text: str) -> list[str]:
    out, i = [], 0
    text = text.rstrip()
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m or m.end() == i:
            raise ValueError(f"cannot parse pbtxt near {text[i:i + 20]!r}")
        tok = m.group(1) or m.group(2) or m.group(3)
        if tok is not None:
            out.append(tok)
        i = m.end()
    return out


def _scalar(tok: str) -> Any:
    if tok.startswith('"'):
        return json.loads(tok)
    for cast in (int, float):
        try:
            return cast(tok)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(tok, tok)


def parse_pbtxt(text: str) -> dict[str, list[Any]]:
    """Protobuf text format -> {field: [values...]} (every field a list, since any may repeat)."""
    toks = _tokens(text)
    pos = 0

    def message(end: str | None) -> dict[str, list[Any]]:
        nonlocal pos
        msg: dict[str, list[Any]] = {}
        while pos < len(toks) and toks[pos] != end:
            key = toks[pos]
            pos += 1
            if pos < len(toks) and toks[pos] == ":":
                pos += 1
            msg.setdefault(key, []).extend(value())
            if pos < len(toks) and toks[pos] in (",", ";"):
                pos += 1
        if end is not None:
            if pos >= len(toks):
                raise ValueError(f"missing {end!r}")
            pos += 1
        return msg

    def value() -> list[Any]:
        nonlocal pos
        tok = toks[pos]
        if tok == "{":
            pos += 1
            return [message("}")]
        if tok == "[":
            pos += 1
            items = []
            while toks[pos] != "]":
                items.extend(value())
                if toks[pos] == ",":
                    pos += 1
            pos += 1
            return items
        pos += 1
        return [_scalar(tok)]

    return message(None)

