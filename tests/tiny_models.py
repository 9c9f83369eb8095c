"""Tiny ONNX models with artcam metadata, built with onnx.helper (no torch), for runtime tests.

Each builder returns the path of a model whose output the test can compute with numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from artcam.runtime.modelfile import (
    ClassInput,
    ImageInput,
    ImageOutput,
    LatentInput,
    LogitsOutput,
    ModelMeta,
    StyleInput,
    write_model_file,
)

OPSET = [helper.make_opsetid("", 17)]


def _save(graph, path: Path, meta: ModelMeta | None) -> Path:
    model = helper.make_model(graph, ir_version=8, opset_imports=OPSET, producer_name="artcam-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    if meta is None:
        path.write_bytes(data)
        return path
    return write_model_file(path, data, meta)


def stylizer(path: Path, styles=("warm", "cool"), multiple: int = 4, identity: bool = False) -> Path:
    """stylized = clip(image * gain + style @ shift, 0, 1): a per-style colour shift (numpy-checkable)."""
    s = len(styles)
    shift = np.linspace(-0.3, 0.3, s * 3, dtype=np.float32).reshape(s, 3)
    nodes = []
    inits = [numpy_helper.from_array(shift, "shift"), numpy_helper.from_array(np.array([0, 3, 1, 1], np.int64), "shp"),
             numpy_helper.from_array(np.float32(0.0), "lo"), numpy_helper.from_array(np.float32(1.0), "hi"),
             numpy_helper.from_array(np.float32(0.9), "gain")]
    if identity:
        nodes.append(helper.make_node("Identity", ["image"], ["stylized"]))
    else:
        nodes += [
            helper.make_node("MatMul", ["style", "shift"], ["sv"]),
            helper.make_node("Reshape", ["sv", "shp"], ["sv4"]),
            helper.make_node("Mul", ["image", "gain"], ["g"]),
            helper.make_node("Add", ["g", "sv4"], ["raw"]),
            helper.make_node("Clip", ["raw", "lo", "hi"], ["stylized"]),
        ]
    graph = helper.make_graph(
        nodes, "tiny_stylizer",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"]),
         helper.make_tensor_value_info("style", TensorProto.FLOAT, ["n", s])],
        [helper.make_tensor_value_info("stylized", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        inits,
    )
    meta = ModelMeta(task="stylize", name=path.stem, image=ImageInput(multiple=multiple, min_size=8, max_size=2048),
                     style=StyleInput(styles=tuple(styles)), output=ImageOutput(name="stylized"),
                     provenance={"command": "tests/tiny_models.py"})
    return _save(graph, path, meta)


def reference_stylize(x: np.ndarray, style_index: int, n_styles: int) -> np.ndarray:
    shift = np.linspace(-0.3, 0.3, n_styles * 3, dtype=np.float32).reshape(n_styles, 3)
    return np.clip(x * np.float32(0.9) + shift[style_index].reshape(1, 3, 1, 1), 0, 1)


def classifier(path: Path, heads=(("objects", ("cat", "dog", "car")), ("style", ("baroque", "cubism"))),
               size: int = 32, meta: bool = True) -> Path:
    """Global average pool -> one Gemm per head; weights fixed by a seed so tests can recompute."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["gap"]),
             helper.make_node("Flatten", ["gap"], ["feat"], axis=1)]
    inits, outs, metas = [], [], []
    for name, labels in heads:
        w = rng.standard_normal((3, len(labels))).astype(np.float32) * 4
        b = rng.standard_normal(len(labels)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")]
        nodes.append(helper.make_node("Gemm", ["feat", f"{name}_w", f"{name}_b"], [name]))
        outs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", len(labels)]))
        metas.append(LogitsOutput(name=name, labels=tuple(labels), head=name))
    graph = helper.make_graph(nodes, "tiny_classifier",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, size, size])],
                              outs, inits)
    m = ModelMeta(task="classify", name=path.stem,
                  image=ImageInput(fixed_size=(size, size), resize="center_crop", mean=(0.5,) * 3, std=(0.25,) * 3),
                  heads=tuple(metas)) if meta else None
    return _save(graph, path, m)


def generator(path: Path, latent: int = 8, size: int = 16, classes: tuple[str, ...] = ()) -> Path:
    """z (and one-hot class) -> tanh(linear) image in [-1, 1]."""
    rng = np.random.default_rng(1)
    inputs = [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", latent])]
    w = rng.standard_normal((latent, 3 * size * size)).astype(np.float32) * 0.3
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([-1, 3, size, size], np.int64), "shp")]
    nodes = [helper.make_node("MatMul", ["z", "w"], ["h"])]
    last = "h"
    if classes:
        inputs.append(helper.make_tensor_value_info("class", TensorProto.FLOAT, ["n", len(classes)]))
        wc = rng.standard_normal((len(classes), 3 * size * size)).astype(np.float32)
        inits.append(numpy_helper.from_array(wc, "wc"))
        nodes += [helper.make_node("MatMul", ["class", "wc"], ["hc"]), helper.make_node("Add", ["h", "hc"], ["hs"])]
        last = "hs"
    nodes += [helper.make_node("Tanh", [last], ["t"]), helper.make_node("Reshape", ["t", "shp"], ["image"])]
    graph = helper.make_graph(nodes, "tiny_generator", inputs,
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, size, size])], inits)
    meta = ModelMeta(task="generate", name=path.stem, latent=LatentInput("z", latent),
                     classes=ClassInput("class", tuple(classes)) if classes else None,
                     output=ImageOutput("image", range=(-1.0, 1.0)))
    return _save(graph, path, meta)
