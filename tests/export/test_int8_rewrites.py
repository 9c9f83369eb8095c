"""The exact graph rewrites before INT8 quantisation: padded conv outputs, Pad folded into Conv."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from artcam.export.channel_pad import pad_conv_outputs  # noqa: E402
from artcam.export.pad_fold import fold_pads_into_convs  # noqa: E402
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


def _padded_net(pad_value=None, channel_pad=False):
    """TF-style 'same': an explicit asymmetric zero Pad in front of a stride-2 conv, then a second Pad that
    also reads the conv's input (two readers: must stay)."""
    rng = np.random.default_rng(3)
    pads = [0, 1 if channel_pad else 0, 0, 1, 0, 0, 1, 2]
    inits = [numpy_helper.from_array(np.array(pads, np.int64), "pads"),
             numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")]
    pad_inputs = ["x", "pads"]
    if pad_value is not None:
        inits.append(numpy_helper.from_array(np.array(pad_value, np.float32), "v"))
        pad_inputs.append("v")
    nodes = [helper.make_node("Pad", pad_inputs, ["p"], name="same_pad", mode="constant"),
             helper.make_node("Conv", ["p", "w"], ["y"], name="conv", strides=[2, 2], pads=[1, 0, 0, 0])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    g = helper.make_graph(nodes, "fold_test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 15, 17])],
                          outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_zero_pads_fold_into_the_conv_exactly():
    m = _padded_net()
    x = np.random.default_rng(4).standard_normal((1, 3, 15, 17)).astype(np.float32)
    ref = make_session(m.SerializeToString(), opt_level="disable").run(None, {"x": x})[0]
    assert fold_pads_into_convs(m) == ["same_pad"]
    assert [n.op_type for n in m.graph.node] == ["Conv"]
    conv_pads = next(list(a.ints) for a in m.graph.node[0].attribute if a.name == "pads")
    assert conv_pads == [1 + 0, 0 + 1, 0 + 1, 0 + 2]
    got = make_session(m.SerializeToString(), opt_level="disable").run(None, {"x": x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [{"pad_value": 0.5}, {"channel_pad": True}])
def test_pads_that_are_not_plain_spatial_zeros_stay(kw):
    m = _padded_net(**kw)
    assert fold_pads_into_convs(m) == [] and [n.op_type for n in m.graph.node] == ["Pad", "Conv"]


def test_quantize_int8_leaves_no_pad_in_front_of_a_conv():
    from artcam.export.precision import Int8Options, quantize_int8

    m = _padded_net(pad_value=0.0)
    rng = np.random.default_rng(5)
    feeds = [{"x": rng.standard_normal((1, 3, 15, 17)).astype(np.float32)} for _ in range(4)]
    q = quantize_int8(m.SerializeToString(), feeds, Int8Options(method="minmax"), log=lambda s: None)
    assert "Pad" not in {n.op_type for n in onnx.load_from_string(q).graph.node}
    ref = make_session(m.SerializeToString()).run(None, feeds[0])[0]
    got = make_session(q).run(None, feeds[0])[0]
    assert np.abs(got - ref).mean() < 0.05 * np.abs(ref).mean()


def test_shipped_classifier_pads_fold_after_ort_preprocessing(tmp_path):
    """ONNX Runtime's quantisation pre-processing leaves the exported EfficientNet-Lite's five 'same' Pads
    in front of their Convs; the fold removes all five and the FP32 outputs stay the same."""
    from artcam.export.precision import _preprocess
    from artcam.runtime.modelfile import read_model_file
    from artcam.runtime.zoo import resolve

    data, _ = read_model_file(resolve("classifier_lite0"))
    m = onnx.load(_preprocess(data, str(tmp_path)))
    x = {"image": np.random.default_rng(7).standard_normal((1, 3, 224, 224)).astype(np.float32)}
    ref = make_session(m.SerializeToString()).run(None, x)
    assert len(fold_pads_into_convs(m)) == 5
    assert "Pad" not in {n.op_type for n in m.graph.node}
    for a, b in zip(ref, make_session(m.SerializeToString()).run(None, x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_fp32_stem_keeps_the_image_reading_conv_in_float():
    from artcam.export.precision import Int8Options, quantize_int8

    m = _net()
    rng = np.random.default_rng(8)
    feeds = [{"x": rng.standard_normal((1, 3, 20, 24)).astype(np.float32)} for _ in range(4)]
    opts = Int8Options(method="minmax", fp32_stem_channels=4)
    q = onnx.load_from_string(quantize_int8(m.SerializeToString(), feeds, opts, log=lambda s: None))
    assert opts.fp32_stem_nodes == ["wide"]
    float_convs = [n.name for n in q.graph.node if n.op_type == "Conv"]
    weights = {i.name: i.data_type for i in q.graph.initializer}
    wide = next(n for n in q.graph.node if n.name == "wide")
    assert "wide" in float_convs and weights.get(wide.input[1]) == TensorProto.FLOAT
    assert Int8Options().fp32_stem_channels == 0  # off unless asked (export --int8-fp32-stem)
