"""The stylizer family: every size builds, any multiple of the stride works, ONNX export matches."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from artcam.export.onnx_export import export_model
from artcam.runtime.modelfile import ImageInput, ImageOutput, ModelMeta, StyleInput, read_model_file
from artcam.training.stylizer_nets import (
    StylizerConfig,
    available_sizes,
    build_stylizer,
    config_for,
    count_parameters,
)


def _net(size: str, styles: int = 3, seed: int = 0, **kw):
    torch.manual_seed(seed)
    net = build_stylizer(config_for(size, styles, **kw))
    # Non-trivial BatchNorm statistics and style affines, so eval-mode export is really tested.
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
        for name, p in net.named_parameters():
            if name.endswith("gamma") or name.endswith("beta"):
                p.add_(torch.randn_like(p) * 0.2)
    return net.eval()


def test_registry_has_three_sizes_of_one_class():
    assert available_sizes() == ["nano", "small", "base"]
    params = {s: count_parameters(build_stylizer(config_for(s, 4))) for s in available_sizes()}
    assert params["nano"] < params["small"] < params["base"]
    with pytest.raises(ValueError, match="unknown stylizer size"):
        config_for("huge", 2)


@pytest.mark.parametrize("size", ["nano", "small", "base"])
def test_any_multiple_of_stride_keeps_shape_and_range(size):
    net = _net(size)
    s = net.stride
    for h, w in [(2 * s, 2 * s), (3 * s, 5 * s), (6 * s, 4 * s)]:
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            y = net(x, torch.eye(3)[:2])
        assert y.shape == x.shape
        assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0


def test_nano_keeps_full_resolution_work_out_of_the_network():
    cfg = config_for("nano", 2)
    assert cfg.stride == 8 and cfg.stem[0][2] == 4  # 4x4 patchify: first conv already at 1/4
    assert cfg.out_shuffle == 4 and cfg.out_kernel == 1  # pixel shuffle out, no full-res conv


def test_styles_switch_and_blend_per_sample():
    net = _net("nano", styles=3)
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        a = net(x, torch.tensor([[1.0, 0, 0]]))
        b = net(x, torch.tensor([[0, 1.0, 0]]))
        mix = net(x, torch.tensor([[0.5, 0.5, 0]]))
        batch = net(torch.cat([x, x]), torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    assert (a - b).abs().mean() > 1e-3
    assert torch.allclose(batch[0], a[0], atol=1e-5) and torch.allclose(batch[1], b[0], atol=1e-5)
    # A 50/50 blend lies between the two styles more than either end does.
    assert (mix - a).abs().mean() < (b - a).abs().mean()


def test_config_round_trips_through_a_dict():
    cfg = config_for("small", 5)
    again = StylizerConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert list(build_stylizer(again).state_dict()) == list(build_stylizer(cfg).state_dict())


def test_widened_kernels_start_as_the_smaller_net():
    small = _net("nano", styles=3)
    big = build_stylizer(config_for("nano", 3, out_kernel=3, up_depthwise=False)).eval()
    widened = big.load_grown(small.state_dict())
    assert set(widened) == {"out.weight", "up_conv.0.conv.weight"}
    assert big.out.weight.shape[-1] == 3 and big.up_conv[0].conv.weight.shape[1] == big.up_conv[0].conv.weight.shape[0]
    x, st = torch.rand(2, 3, 48, 64), torch.tensor([[1.0, 0, 0], [0.2, 0.3, 0.5]])
    with torch.no_grad():
        assert torch.allclose(big(x, st), small(x, st), atol=1e-6)
        big.out.weight[:, :, 0, 0] += 0.1  # the widened kernel's new taps are trainable weights like any other
        assert (big(x, st) - small(x, st)).abs().max() > 1e-3


def test_grown_net_starts_as_the_smaller_one_and_then_can_differ():
    small = _net("nano", styles=3)
    big = build_stylizer(config_for("nano", 3, blocks=7, detail=8))
    new = big.load_grown(small.state_dict())
    assert {k.split(".")[0] for k in new} == {"blocks", "detail_in", "detail_proj", "detail_conv", "detail_out"}
    big.eval()
    x, st = torch.rand(2, 3, 48, 64), torch.tensor([[1.0, 0, 0], [0.2, 0.3, 0.5]])
    with torch.no_grad():
        assert torch.equal(big(x, st), small(x, st))
        for name, p in big.named_parameters():  # the new parts are live, not frozen at zero
            if name in new:
                p.add_(torch.randn_like(p) * 0.1)
        assert (big(x, st) - small(x, st)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="do not fit"):
        big.load_grown(build_stylizer(config_for("nano", 4)).state_dict())  # other style count
    with pytest.raises(ValueError, match="do not fit"):  # a kernel cannot shrink
        small.load_grown(build_stylizer(config_for("nano", 3, out_kernel=3)).state_dict())
    with pytest.raises(ValueError, match="cannot start as the identity"):
        build_stylizer(config_for("small", 3)).load_grown({})


def test_detail_branch_needs_an_even_shuffle():
    with pytest.raises(ValueError, match="even out_shuffle"):
        config_for("small", 2, detail=8)


@pytest.mark.parametrize("size,kw", [("nano", {}), ("small", {}), ("nano", {"detail": 8})])
def test_onnx_export_parity_at_dynamic_sizes(tmp_path, size, kw):
    net = _net(size, styles=3, **kw)
    s = net.stride
    meta = ModelMeta(task="stylize", name=f"t_{size}", image=ImageInput(multiple=s, min_size=2 * s),
                     style=StyleInput(styles=("a", "b", "c")), output=ImageOutput(name="stylized"))
    rng = np.random.default_rng(0)
    verify = [
        {"image": rng.random((1, 3, 4 * s, 4 * s), dtype=np.float32), "style": np.eye(3, dtype=np.float32)[:1]},
        {"image": rng.random((2, 3, 3 * s, 7 * s), dtype=np.float32),
         "style": np.array([[0.2, 0.8, 0], [0, 0, 1]], np.float32)},
    ]
    path = tmp_path / "m.onnx"
    report = export_model(net, {"image": torch.rand(1, 3, 4 * s, 4 * s), "style": torch.eye(3)[:1]}, ["stylized"],
                          meta, path,
                          dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "style": {0: "n"},
                                        "stylized": {0: "n", 2: "h", 3: "w"}},
                          verify_inputs=verify, atol=1e-4)
    assert report.passed
    _, m = read_model_file(path)
    assert m.styles == ("a", "b", "c") and m.image.multiple == s
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": rng.random((1, 3, 5 * s, 2 * s), dtype=np.float32),
                          "style": np.eye(3, dtype=np.float32)[2:]})[0]
    assert out.shape == (1, 3, 5 * s, 2 * s)
