"""`artcam export`: checkpoint dispatch, ONNX parity gate, FP16/INT8, metadata, bad input, atomicity."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
from torch import nn  # noqa: E402

from artcam.export import cli, parity, trainers  # noqa: E402
from artcam.runtime.backends.onnxrt import make_session  # noqa: E402
from artcam.runtime.errors import ArtcamError, InputError, ModelError  # noqa: E402
from artcam.runtime.modelfile import (  # noqa: E402
    ImageInput,
    ImageOutput,
    LogitsOutput,
    ModelMeta,
    StyleInput,
    read_model_file,
    write_model_file,
)

STYLES = ("ink", "oil")
LABELS = ("red", "green", "blue")


class TinyStylizer(nn.Module):
    """Fully convolutional, style-modulated, sigmoid output: the stylizer contract in miniature."""

    def __init__(self, noisy: bool = False):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 3, 3, padding=1)
        self.style = nn.Linear(len(STYLES), 8)
        self.noisy = noisy

    def forward(self, image, style):
        h = torch.relu(self.c1(image)) * (1 + self.style(style))[:, :, None, None]
        if self.noisy:  # traced as a random op: ONNX and PyTorch then disagree
            h = h + torch.rand_like(h)
        return torch.sigmoid(self.c2(h) + image)


class TinyClassifier(nn.Module):
    """Colour classifier: the mean of each channel decides (so real labels are learnable exactly)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, [2, 1, 0]].reshape(3, 3, 1, 1) * 4)  # BGR folders -> RGB logits
            self.conv.bias.zero_()

    def forward(self, image):
        return self.conv(image).mean(dim=(2, 3))


def stylizer_meta() -> ModelMeta:
    return ModelMeta(task="stylize", name="tiny_stylizer", image=ImageInput(multiple=4, min_size=8),
                     style=StyleInput(styles=STYLES), output=ImageOutput(name="stylized"))


def classifier_meta() -> ModelMeta:
    return ModelMeta(task="classify", name="tiny_classifier",
                     image=ImageInput(fixed_size=(32, 32), resize="center_crop"),
                     heads=(LogitsOutput("logits", LABELS, head="colour"),))


def _spec_stylizer(ckpt):
    net = TinyStylizer(noisy=ckpt["config"].get("noisy", False))
    net.load_state_dict(ckpt["model"])
    return {
        "model": net.eval(), "meta": stylizer_meta(),
        "example_inputs": {"image": torch.rand(1, 3, 32, 32), "style": torch.eye(2)[:1]},
        "output_names": ["stylized"],
        "dynamic_axes": {"image": {0: "n", 2: "h", 3: "w"}, "style": {0: "n"}, "stylized": {0: "n", 2: "h", 3: "w"}},
    }


@pytest.fixture
def fake_trainer(monkeypatch):
    """A trainer module honouring the export_spec contract, registered for kind 'stylize'."""
    mod = types.ModuleType("artcam_test_tiny_trainer")
    mod.export_spec = _spec_stylizer
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setitem(trainers.TRAINERS, "stylize", mod.__name__)
    return mod


def save_ckpt(path: Path, kind="stylize", noisy=False) -> Path:
    torch.manual_seed(0)
    net = TinyStylizer()
    torch.save({"kind": kind, "arch": "tiny", "model": net.state_dict(), "config": {"noisy": noisy}, "step": 3,
                "optimizer": {}, "rng": {}}, path)
    return path


def write_images(folder: Path, n: int, size=(40, 56), labelled=False) -> Path:
    imgs = parity.synthetic_images(n, size=size, seed=3)
    for i, img in enumerate(imgs):
        sub = folder / LABELS[i % 3] if labelled else folder
        sub.mkdir(parents=True, exist_ok=True)
        if labelled:  # a dominant colour per class, so the tiny classifier's labels are meaningful
            img = (img * 0.3).astype(np.uint8)
            img[..., i % 3] = 200
        cv2.imwrite(str(sub / f"img{i:02d}.png"), img)
    return folder


def run(argv) -> int:
    return cli.main([str(a) for a in argv])


# --- checkpoint -> ONNX ------------------------------------------------------------------------


def test_checkpoint_to_onnx_keeps_metadata_and_dynamic_axes(tmp_path, fake_trainer, capsys):
    ckpt = save_ckpt(tmp_path / "tiny.pt")
    out = tmp_path / "tiny.onnx"
    assert run([ckpt, "-o", out, "--simplify"]) == 0
    data, meta = read_model_file(out)
    assert meta.name == "tiny_stylizer" and meta.styles == STYLES and meta.content_hash
    report = json.loads((tmp_path / "tiny.onnx.report.json").read_text())
    assert report["onnx_vs_pytorch"]["passed"] and report["onnx_vs_pytorch"]["outputs"]["stylized"]["max_abs"] < 1e-4
    assert "[PASS] stylized (image)" in capsys.readouterr().out
    # dynamic batch and spatial axes: another size and batch 2 run and match PyTorch
    sess = make_session(data)
    x = np.random.default_rng(0).random((2, 3, 24, 40), dtype=np.float32)
    s = np.eye(2, dtype=np.float32)
    got = sess.run(None, {"image": x, "style": s})[0]
    net = _spec_stylizer(torch.load(ckpt, weights_only=False))["model"]
    ref = net(torch.from_numpy(x), torch.from_numpy(s)).detach().numpy()
    assert got.shape == (2, 3, 24, 40) and np.abs(got - ref).max() < 1e-4


def test_dynamic_flag_and_imgsz_override_a_static_spec(tmp_path, fake_trainer, monkeypatch):
    def static_spec(ckpt):
        spec = _spec_stylizer(ckpt)
        spec["dynamic_axes"] = {}
        return spec

    monkeypatch.setattr(fake_trainer, "export_spec", static_spec)
    ckpt = save_ckpt(tmp_path / "t.pt")

    def dims(path):
        sess = make_session(read_model_file(path)[0])
        return {v.name: list(v.shape) for v in sess.get_inputs() + sess.get_outputs()}

    assert run([ckpt, "-o", tmp_path / "static.onnx", "--imgsz", 24, 40]) == 0
    assert dims(tmp_path / "static.onnx")["image"] == [1, 3, 24, 40]
    assert run([ckpt, "-o", tmp_path / "dyn.onnx", "--dynamic"]) == 0
    d = dims(tmp_path / "dyn.onnx")
    assert all(isinstance(x, str) for x in d["image"][0:1] + d["image"][2:] + d["stylized"][2:])
    assert isinstance(d["style"][0], str) and d["style"][1] == 2


def test_parity_failure_refuses_to_write_and_keeps_old_file(tmp_path, fake_trainer):
    ckpt = save_ckpt(tmp_path / "noisy.pt", noisy=True)
    out = tmp_path / "noisy.onnx"
    out.write_bytes(b"previous artifact")
    with pytest.raises(ModelError, match="fails the tolerance"):
        run([ckpt, "-o", out])
    assert out.read_bytes() == b"previous artifact"
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    assert run([ckpt, "-o", out, "--no-verify"]) == 0  # the escape hatch writes it
    assert read_model_file(out)[1].name == "tiny_stylizer"


def test_wrong_kind_and_non_checkpoints_are_refused(tmp_path, fake_trainer):
    with pytest.raises(ModelError, match="not an artcam training checkpoint"):
        run([save_ckpt(tmp_path / "x.pt", kind="detect"), "-o", tmp_path / "x.onnx"])
    torch.save({"model": {}}, tmp_path / "nokind.pt")
    with pytest.raises(ModelError, match="no 'kind' field"):
        run([tmp_path / "nokind.pt"])
    (tmp_path / "garbage.pt").write_bytes(b"not a pickle")
    with pytest.raises(ModelError, match="cannot read checkpoint"):
        run([tmp_path / "garbage.pt"])
    with pytest.raises(ArtcamError, match="source not found"):
        run([tmp_path / "missing.pt"])
    (tmp_path / "model.tflite").write_bytes(b"x")
    with pytest.raises(ArtcamError, match="unknown source type"):
        run([tmp_path / "model.tflite"])


def test_real_stylize_trainer_checkpoint(tmp_path):
    """The real trainer's export_spec, on a nano net saved in its checkpoint format."""
    stylize = pytest.importorskip("artcam.training.stylize")
    nets = pytest.importorskip("artcam.training.stylizer_nets")
    from artcam.training.common import save_checkpoint

    cfg = nets.config_for("nano", 2)
    net = nets.build_stylizer(cfg)
    ckpt = {"kind": "stylize", "arch": "nano", "model": net.state_dict(), "step": 1,
            "config": {"net": cfg.to_dict(), "styles": ["a", "b"], "name": "stylizer_test"}}
    try:
        stylize.export_spec(ckpt)
    except (KeyError, TypeError) as e:  # the trainer's format moved on: say so instead of failing here
        pytest.skip(f"training.stylize checkpoint format changed: {e!r}")
    save_checkpoint(tmp_path / "s.pt", ckpt)
    assert run([tmp_path / "s.pt", "-o", tmp_path / "s.onnx"]) == 0
    assert read_model_file(tmp_path / "s.onnx")[1].styles == ("a", "b")


# --- ONNX in: checker, FP16, INT8 -------------------------------------------------------------


@pytest.fixture
def stylizer_onnx(tmp_path, fake_trainer) -> Path:
    out = tmp_path / "sty.onnx"
    assert run([save_ckpt(tmp_path / "sty.pt"), "-o", out]) == 0
    return out


def test_onnx_failing_checker_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])  # z is never produced
    bad = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)])
    write_model_file(tmp_path / "bad.onnx", bad.SerializeToString(), stylizer_meta())
    with pytest.raises(ModelError, match="fails the ONNX checker"):
        run([tmp_path / "bad.onnx", "-o", tmp_path / "out.onnx"])
    assert not (tmp_path / "out.onnx").exists()
    (tmp_path / "trunc.onnx").write_bytes(onnx.load(tmp_path / "bad.onnx").SerializeToString()[:20])
    with pytest.raises(ModelError):
        run([tmp_path / "trunc.onnx"])


def test_fp16_reports_error_and_keeps_metadata(stylizer_onnx, tmp_path):
    out = tmp_path / "sty_fp16.onnx"
    assert run([stylizer_onnx, "--half", "-o", out]) == 0
    data, meta = read_model_file(out)
    assert meta.styles == STYLES and meta.provenance["export"]["precision"] == "fp16"
    import onnx

    m = onnx.load_from_string(data)
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in m.graph.initializer)
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # I/O stays FP32
    rep = json.loads(Path(str(out) + ".report.json").read_text())["fp16"]
    psnr = rep["measured"][rep["variant"]]["outputs"]["stylized"]["psnr"]
    assert 40 < psnr < 200  # measured, finite, and above the gate


def test_output_folder_gets_the_default_name(stylizer_onnx, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    assert run([stylizer_onnx, "--half", "-o", folder]) == 0
    _, meta = read_model_file(folder / f"{Path(stylizer_onnx).stem}_fp16.onnx")
    assert meta.provenance["export"]["precision"] == "fp16"


def test_fp16_keeps_sensitive_ops_when_they_matter(tmp_path):
    """RMS normalisation of large activations: x**2 overflows FP16 (65504) unless Pow/ReduceMean/Sqrt
    stay FP32, so the block-list variant must be chosen, and measured as passing."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = numpy_helper.from_array(np.full((1, 8), 300.0, np.float32), "k")
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    nodes = [helper.make_node("Mul", ["x", "k"], ["h"]), helper.make_node("Pow", ["h", "two"], ["sq"]),
             helper.make_node("ReduceMean", ["sq"], ["ms"], keepdims=1), helper.make_node("Sqrt", ["ms"], ["rms"]),
             helper.make_node("Div", ["h", "rms"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], [k, two])
    data = helper.make_model(g, ir_version=8, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    onnx.checker.check_model(onnx.load_from_string(data))
    from artcam.export.precision import choose_fp16

    feeds = [{"x": np.random.default_rng(i).random((1, 8), dtype=np.float32) * 20} for i in range(4)]
    refs = parity.run_ort(make_session(data), feeds)
    choice = choose_fp16(data, feeds, refs, None, parity.Tolerance(max_abs=1e-2), log=lambda m: None)
    assert not choice.measured["all-fp16"]["passed"]  # inf after Pow -> y collapses to 0
    assert choice.variant == "sensitive-ops-fp32" and {"Pow", "ReduceMean", "Sqrt"} <= set(choice.kept_fp32)
    assert choice.measured["sensitive-ops-fp32"]["passed"]


def test_int8_stylizer_from_real_folder(stylizer_onnx, tmp_path):
    data_dir = write_images(tmp_path / "photos", 14)
    out = tmp_path / "sty_int8.onnx"
    assert run([stylizer_onnx, "--int8", "--data", data_dir, "--calib-count", 8, "--verify-count", 4,
                "--calib-method", "minmax", "-o", out]) == 0
    data, meta = read_model_file(out)
    assert b"QuantizeLinear" in data and meta.provenance["export"]["precision"] == "int8"
    rep = json.loads(Path(str(out) + ".report.json").read_text())["int8"]
    assert rep["calibration_images"] == 8 and rep["verification_images"] == 4
    assert rep["comparison"]["outputs"]["stylized"]["psnr"] >= 30


def test_freeze_style_folds_the_style_input(stylizer_onnx, tmp_path):
    out = tmp_path / "frozen.onnx"
    assert run([stylizer_onnx, "--freeze-style", "oil", "-o", out]) == 0
    data, meta = read_model_file(out)
    assert meta.style is None and meta.name == "tiny_stylizer_oil"
    sess = make_session(data)
    assert [i.name for i in sess.get_inputs()] == ["image"]
    x = np.random.default_rng(0).random((1, 3, 16, 20), dtype=np.float32)
    ref = make_session(stylizer_onnx.read_bytes()).run(None, {"image": x, "style": np.eye(2, dtype=np.float32)[1:]})
    np.testing.assert_allclose(sess.run(None, {"image": x})[0], ref[0], atol=1e-5)
    with pytest.raises(ModelError, match="unknown style 'acrylic'"):
        run([stylizer_onnx, "--freeze-style", "acrylic"])


def test_int8_keep_fp32_measures_and_excludes_the_worst_node(stylizer_onnx, tmp_path):
    data_dir = write_images(tmp_path / "photos", 12)
    out = tmp_path / "sty_mixed.onnx"
    assert run([stylizer_onnx, "--int8", "--data", data_dir, "--calib-count", 8, "--verify-count", 4,
                "--calib-method", "minmax", "--int8-keep-fp32", 1, "-o", out]) == 0
    rep = json.loads(Path(str(out) + ".report.json").read_text())["int8"]
    kept = rep["options"]["kept_fp32_nodes"]
    assert 1 <= len(kept) <= 2  # a conv and the ReLU folded into it count as one
    import onnx

    g = onnx.load(out).graph
    weights = {t.name for t in g.initializer}
    convs = [n for n in g.node if n.op_type == "Conv"]
    kept_convs = [n for n in convs if n.name in kept]
    assert kept_convs and all(n.input[1] in weights for n in kept_convs)  # float weights, no DequantizeLinear
    assert any(n.input[1] not in weights for n in convs if n.name not in kept)  # the rest is INT8



@pytest.mark.data
def test_int8_calibrates_on_the_real_photos(shared_data, stylizer_onnx, tmp_path):
    out = tmp_path / "real_int8.onnx"
    assert run([stylizer_onnx, "--int8", "--data", shared_data / "photos", "--calib-count", 16, "--verify-count", 8,
                "--calib-method", "minmax", "-o", out]) == 0
    rep = json.loads(Path(str(out) + ".report.json").read_text())["int8"]
    assert rep["calibration_images"] == 16 and rep["verification_images"] == 8
    assert rep["comparison"]["outputs"]["stylized"]["psnr"] >= 30


def test_int8_classifier_reports_accuracy_from_label_folders(tmp_path):
    data_dir = write_images(tmp_path / "art", 30, labelled=True)
    src = tmp_path / "cls.onnx"
    from artcam.export.onnx_export import export_model

    export_model(TinyClassifier(), {"image": torch.rand(1, 3, 32, 32)}, ["logits"], classifier_meta(), src,
                 dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})
    out = tmp_path / "cls_int8.onnx"
    assert run([src, "--int8", "--data", data_dir, "--calib-count", 12, "--verify-count", 15, "-o", out]) == 0
    o = json.loads(Path(str(out) + ".report.json").read_text())["int8"]["comparison"]["outputs"]["logits"]
    assert o["ref_top1_acc"] == 1.0  # the colour rule labels its own folders correctly
    assert o["test_top1_acc"] >= 0.99 and o["top1_agree"] >= 0.99


def test_generator_int8_calibrates_on_latents_without_data(tmp_path):
    from artcam.export.onnx_export import export_model
    from artcam.runtime.modelfile import LatentInput

    class Gen(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 3 * 8 * 8)
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, z):
            return torch.tanh(self.conv(self.fc(z).reshape(-1, 3, 8, 8)))

    torch.manual_seed(0)
    meta = ModelMeta(task="generate", name="tiny_gen", latent=LatentInput("z", 8),
                     output=ImageOutput("image", range=(-1.0, 1.0)))
    src = tmp_path / "gen.onnx"
    export_model(Gen(), {"z": torch.randn(1, 8)}, ["image"], meta, src, dynamic_axes={"z": {0: "n"}, "image": {0: "n"}})
    out = tmp_path / "gen_int8.onnx"
    assert run([src, "--int8", "--calib-count", 16, "--verify-count", 12, "-o", out]) == 0
    rep = json.loads(Path(str(out) + ".report.json").read_text())["int8"]
    assert rep["comparison"]["samples"] == 12 and rep["comparison"]["outputs"]["image"]["psnr"] >= 30
    # 7-bit weights by default for ONNX Runtime: with 8 bits this net measured 27.7 dB on an AVX2 CPU
    # without VNNI (saturating u8 x s8 kernels), 52.5 dB with 7; a VNNI machine passes either way
    assert rep["options"]["reduce_range"] is True
    full = tmp_path / "gen_int8_full.onnx"
    assert run([src, "--int8", "--int8-full-range", "--calib-count", 16, "--verify-count", 12, "--no-verify",
                "-o", full]) == 0
    assert json.loads(Path(str(full) + ".report.json").read_text())["int8"]["options"]["reduce_range"] is False


def test_calibration_folder_problems(stylizer_onnx, tmp_path):
    few = write_images(tmp_path / "few", 3)
    with pytest.raises(InputError, match="only 3 readable images"):
        run([stylizer_onnx, "--int8", "--data", few, "--verify-count", 16])
    with pytest.raises(InputError, match=r"setting aside 2 verification images\) has only 1 readable"):
        run([stylizer_onnx, "--int8", "--data", few, "--verify-count", 2, "--calib-count", 16])
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(10):
        (bad / f"x{i}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(InputError, match="10 unreadable"):
        run([stylizer_onnx, "--int8", "--data", bad, "--verify-count", 10])
    with pytest.raises(InputError, match="data folder not found"):
        run([stylizer_onnx, "--int8", "--data", tmp_path / "nope"])
    with pytest.raises(ArtcamError, match="needs calibration images"):
        run([stylizer_onnx, "--int8"])


def test_killed_mid_write_leaves_nothing_partial(stylizer_onnx, tmp_path, monkeypatch):
    out = tmp_path / "k.onnx"
    real_replace = os.replace

    def killed(src, dst):  # the process "dies" just before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        run([stylizer_onnx, "--half", "-o", out])
    monkeypatch.setattr(os, "replace", real_replace)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_engine_format_without_tensorrt_says_so(stylizer_onnx, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails, as on this CPU machine
    with pytest.raises(ArtcamError, match="TensorRT is not installed"):
        run([stylizer_onnx, "--format", "engine", "-o", tmp_path / "x.engine"])
    assert not (tmp_path / "x.engine").exists()


def test_a_default_output_never_lands_on_a_shipped_model(monkeypatch):
    """Replacing a model in runtime/models takes its exact path with -o; a default name or -o DIR refuses."""
    from artcam.runtime.zoo import SHIPPED_DIR

    def args(out=None, half=False):
        return types.SimpleNamespace(out=out, int8=False, half=half)

    with pytest.raises(ModelError, match="shipped models' folder"):
        cli._default_out(args(str(SHIPPED_DIR)), "stylizer_nano", ".onnx")
    monkeypatch.chdir(SHIPPED_DIR)
    with pytest.raises(ModelError, match="-o stylizer_nano_fp16.onnx"):
        cli._default_out(args(half=True), "stylizer_nano", ".onnx")
    explicit = SHIPPED_DIR / "stylizer_nano.onnx"
    assert cli._default_out(args(str(explicit)), "stylizer_nano", ".onnx") == explicit
