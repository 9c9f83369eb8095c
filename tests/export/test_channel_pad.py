"""Padding a convolution's few output channels for ONNX Runtime's INT8 kernels changes no output."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from artcam.export.channel_pad import pad_conv_outputs  # noqa: E402
from artcam.runtime.backends.onnxrt import make_session  # noqa: E402


def _net():
    """conv 3->16 (wide: left alone) | relu | conv 16->12 with bias (padded) | depthwise 12 (grouped: left alone)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32) * 0.2, "w1"),
             numpy_helper.from_array(rng.standard_normal((12, 16, 3, 3)).astype(np.float32) * 0.1, "w2"),
             numpy_helper.from_array(rng.standard_normal(12).astype(np.float32), "b2"),
             numpy_helper.from_array(rng.standard_normal((12, 1, 3, 3)).astype(np.float32), "w3")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="wide", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="head", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["y", "w3"], ["z"], name="dw", group=12, pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "pad_test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 20, 24])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 12, 20, 24])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_padding_is_exact_and_only_where_needed():
    m = _net()
    x = np.random.default_rng(1).standard_normal((1, 3, 20, 24)).astype(np.float32)
    ref = make_session(m.SerializeToString()).run(None, {"x": x})[0]
    assert pad_conv_outputs(m, 16) == ["head"]
    onnx.checker.check_model(m)
    w2 = next(i for i in m.graph.initializer if i.name == "w2")
    assert list(w2.dims) == [16, 16, 3, 3]
    got = make_session(m.SerializeToString()).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_quantize_int8_pads_and_records_it():
    from artcam.export.precision import Int8Options, quantize_int8

    m = _net()
    rng = np.random.default_rng(2)
    feeds = [{"x": rng.standard_normal((1, 3, 20, 24)).astype(np.float32)} for _ in range(4)]
    opts = Int8Options(method="minmax")
    q = quantize_int8(m.SerializeToString(), feeds, opts, log=lambda s: None)
    assert opts.padded_nodes == ["head"]
    ref = make_session(m.SerializeToString()).run(None, feeds[0])[0]
    got = make_session(q).run(None, feeds[0])[0]
    assert got.shape == ref.shape == (1, 12, 20, 24)
    assert np.abs(got - ref).mean() < 0.05 * np.abs(ref).mean()
    off = Int8Options(method="minmax", pad_conv_outputs=0)
    quantize_int8(m.SerializeToString(), feeds, off, log=lambda s: None)
    assert off.padded_nodes == []
