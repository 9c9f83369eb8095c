"""`artcam export --format triton`: the written config.pbtxt parses back and matches the model."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from test_export_cli import fake_trainer, save_ckpt  # noqa: E402,F401  (tests/ is on sys.path under pytest)

from artcam.export import cli  # noqa: E402
from artcam.export.triton import TensorDecl, make_config, parse_pbtxt, tensor_decls  # noqa: E402
from artcam.runtime.errors import ArtcamError  # noqa: E402
from artcam.runtime.modelfile import read_model_file  # noqa: E402


def test_parse_pbtxt_handles_nesting_lists_strings_and_comments():
    text = '''
    # a comment
    name: "m"  platform: "onnxruntime_onnx"
    max_batch_size: 8
    input [ { name: "a" dims: [ 3, -1 ] }, { name: "b\\"q" dims: [1] } ]
    dynamic_batching { max_queue_delay_microseconds: 100 preferred_batch_size: [ 4, 8 ] }
    parameters { key: "k" value: { string_value: "v" } }
    parameters { key: "k2" value { string_value: "v2" } }
    flag: true
    '''
    d = parse_pbtxt(text)
    assert d["name"] == ["m"] and d["max_batch_size"] == [8] and d["flag"] == [True]
    assert [i["name"][0] for i in d["input"]] == ["a", 'b"q'] and d["input"][0]["dims"] == [3, -1]
    assert d["dynamic_batching"][0]["preferred_batch_size"] == [4, 8]
    assert [p["value"][0]["string_value"][0] for p in d["parameters"]] == ["v", "v2"]
    with pytest.raises(ValueError):
        parse_pbtxt("input [ { name: \"a\" ")


def test_triton_repo_for_dynamic_stylizer(tmp_path, fake_trainer):  # noqa: F811
    onnx_path = tmp_path / "sty.onnx"
    assert cli.main([str(save_ckpt(tmp_path / "s.pt")), "-o", str(onnx_path)]) == 0
    repo = tmp_path / "repo"
    assert cli.main([str(onnx_path), "--format", "triton", "-o", str(repo), "--instances", "2"]) == 0
    entry = repo / "tiny_stylizer"
    cfg = parse_pbtxt((entry / "config.pbtxt").read_text())
    data, meta = read_model_file(entry / "1" / "model.onnx")  # artcam metadata travels with the model
    assert meta.name == "tiny_stylizer"
    ins, outs = tensor_decls(data)
    assert cfg["name"] == ["tiny_stylizer"] and cfg["platform"] == ["onnxruntime_onnx"]
    assert cfg["max_batch_size"] == [8] and cfg["dynamic_batching"][0]["max_queue_delay_microseconds"] == [100]
    # batch dim left out of dims when max_batch_size > 0
    got = {t["name"][0]: (t["data_type"][0], t["dims"]) for t in cfg["input"] + cfg["output"]}
    want = {t.name: ("TYPE_FP32", list(t.shape[1:])) for t in ins + outs}
    assert got == want == {"image": ("TYPE_FP32", [3, -1, -1]), "style": ("TYPE_FP32", [2]),
                           "stylized": ("TYPE_FP32", [3, -1, -1])}
    assert cfg["instance_group"][0]["count"] == [2] and cfg["instance_group"][0]["kind"] == ["KIND_GPU"]
    params = {p["key"][0]: p["value"][0]["string_value"][0] for p in cfg["parameters"]}
    assert params == {"artcam.task": "stylize", "artcam.precision": "fp32"}
    # re-export as CPU instances replaces the config atomically
    assert cli.main([str(onnx_path), "--format", "triton", "-o", str(repo), "--device", "cpu"]) == 0
    assert parse_pbtxt((entry / "config.pbtxt").read_text())["instance_group"][0]["kind"] == ["KIND_CPU"]


def test_fixed_batch_model_gets_max_batch_size_zero():
    ins = [TensorDecl("image", "float32", (1, 3, 224, 224))]
    outs = [TensorDecl("logits", "float32", (1, 7))]
    cfg = parse_pbtxt(make_config("cls", "plan", ins, outs, max_batch_size=8))
    assert cfg["max_batch_size"] == [0] and "dynamic_batching" not in cfg
    assert cfg["input"][0]["dims"] == [1, 3, 224, 224] and cfg["platform"] == ["tensorrt_plan"]
    with pytest.raises(ArtcamError):
        make_config("cls", "savedmodel", ins, outs)


def test_triton_plan_needs_tensorrt(tmp_path, fake_trainer, monkeypatch):  # noqa: F811
    onnx_path = tmp_path / "sty.onnx"
    assert cli.main([str(save_ckpt(tmp_path / "s.pt")), "-o", str(onnx_path)]) == 0
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ArtcamError, match="TensorRT is not installed"):
        cli.main([str(onnx_path), "--format", "triton", "--triton-plan", "-o", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()


def test_triton_onnx_runs_like_the_source(tmp_path, fake_trainer):  # noqa: F811
    """The model.onnx in the repository is the verified artifact: same outputs as the source."""
    onnx_path = tmp_path / "sty.onnx"
    assert cli.main([str(save_ckpt(tmp_path / "s.pt")), "-o", str(onnx_path)]) == 0
    assert cli.main([str(onnx_path), "--format", "triton", "-o", str(tmp_path / "repo")]) == 0
    from artcam.runtime.backends.onnxrt import make_session

    feed = {"image": np.random.default_rng(0).random((3, 3, 16, 24), dtype=np.float32),
            "style": np.eye(2, dtype=np.float32)[[0, 1, 0]]}
    a = make_session(onnx_path.read_bytes()).run(None, feed)[0]
    b = make_session((tmp_path / "repo" / "tiny_stylizer" / "1" / "model.onnx").read_bytes()).run(None, feed)[0]
    np.testing.assert_array_equal(a, b)
