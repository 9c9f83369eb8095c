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
    with torch.no_grad():  # distinct style affines, so switching and blending are really tested
        for name, p in net.named_parameters():
            if name.endswith("gamma") or name.endswith("beta"):
                p.add_(torch.randn_like(p) * 0.2)
    return net.eval()


def test_registry_has_the_students_and_the_teacher():
    assert available_sizes() == ["nano", "hd", "teacher"]
    params = {s: count_parameters(build_stylizer(config_for(s, 4))) for s in available_sizes()}
    assert params["hd"] < params["nano"] < params["teacher"]
    with pytest.raises(ValueError, match="unknown stylizer size"):
        config_for("huge", 2)
    with pytest.raises(ValueError, match="strides multiply"):
        config_for("nano", 2, up=((8, 3),))
    with pytest.raises(ValueError, match="strides multiply"):  # shuffle counts as upsampling
        config_for("nano", 2, up=((32, 3), (16, 3)), shuffle=4)
    with pytest.raises(ValueError, match="unknown stylizer config keys"):
        StylizerConfig.from_dict({**config_for("nano", 2).to_dict(), "detail": 8})


@pytest.mark.parametrize("size", ["nano", "hd", "teacher"])
def test_any_multiple_of_stride_keeps_shape_and_range(size):
    net = _net(size)
    s = net.stride
    for h, w in [(2 * s, 2 * s), (3 * s, 5 * s), (6 * s, 4 * s)]:
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            y = net(x, torch.eye(3)[:2])
        assert y.shape == x.shape
        assert 0.0 <= float(y.min()) and float(y.max()) <= 1.0


def test_nano_normalises_only_its_coarse_maps():
    """Instance norm at 1/4 and below; the 1/2-resolution convs are plain (fusable) convs."""
    net = _net("nano")
    assert net.down[0].norm is None and net.down[1].norm is not None  # 1/2 res plain, 1/4 normalised
    assert net.up_conv[-1].norm is None and net.up_conv[0].norm is not None
    assert all(b.dw.norm is not None and b.pw1.norm is None for b in net.blocks)  # dw_light: one norm a block
    assert net.skip_from == [1, 0]  # U-Net skips at 1/4 and 1/2
    assert net.cfg.shuffle == 2 and net.out.out_channels == 12  # the last 2x is a pixel shuffle


def test_teacher_is_normalised_everywhere():
    net = _net("teacher")
    convs = [m for m in net.modules() if m.__class__.__name__ == "ConvNormAct"]
    assert convs and all(m.norm is not None for m in convs)


def test_instance_norm_makes_the_output_ignore_global_brightness_and_contrast_of_the_codes():
    """Per-image normalisation: the net's first normalised layer sees the same map for x and 2x + c
    only up to the conv's linearity, so outputs of a photo and a contrast-stretched copy stay close."""
    net = _net("teacher")
    x = torch.rand(1, 3, 32, 32) * 0.5 + 0.25
    with torch.no_grad():
        a, b = net(x, torch.eye(3)[:1]), net(x * 1.5 - 0.1, torch.eye(3)[:1])
    assert (a - b).abs().mean() < 0.05


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
    cfg = config_for("teacher", 5)
    again = StylizerConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert list(build_stylizer(again).state_dict()) == list(build_stylizer(cfg).state_dict())


SHUFFLE = {"down": ((16, 3, 2), (32, 3, 2), (64, 3, 2)), "up": ((32, 3), (16, 3)), "shuffle": 2}  # depthwise decoder


def test_pixel_shuffle_output_keeps_shape_and_gives_each_2x2_block_its_own_pixels():
    net = _net("nano", **SHUFFLE)
    assert net.out.in_channels == 16 and net.out.out_channels == 12  # 3 colours x 2 x 2 sub-pixels
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        y = net(x, torch.eye(3)[:1])
    assert y.shape == x.shape
    # Sub-pixels of one 2x2 block come from different output channels, so they differ (not a nearest upsample).
    assert (y[..., 0::2, 0::2] - y[..., 1::2, 1::2]).abs().mean() > 1e-4


FULL_RES = {"down": ((16, 3, 2), (32, 3, 2), (64, 3, 2)), "up": ((32, 3), (16, 3), (8, 3)), "up_depthwise": True,
            "shuffle": 1}  # the previous nano: a full-resolution decoder stage, no shuffle


@pytest.mark.parametrize("size,kw", [("nano", {}), ("teacher", {}), ("nano", {"pad": "reflect"}), ("nano", SHUFFLE),
                                     ("nano", FULL_RES)])
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


def test_hd_shares_nanos_names_for_the_layers_they_share_so_it_starts_from_nano():
    """hd is a thinner nano: its 1/8 core and style rows carry nano's names and shapes (net.init_from copies
    them); its thinner 1/2-resolution stage and 1x1 output do not, and start fresh."""
    from artcam.training.stylizer_file import copy_matching

    nano, hd = _net("nano", seed=1), _net("hd", seed=2)
    copied = copy_matching(hd, nano.state_dict())
    assert "blocks.2.dw.norm.gamma" in copied and "down.2.conv.weight" in copied and "up_conv.0.norm.beta" in copied
    assert "blocks.3.dw.conv.weight" not in copied and "out.weight" not in copied and "down.0.conv.weight" not in copied
    for k in copied:
        assert torch.equal(hd.state_dict()[k], nano.state_dict()[k])
    assert hd.cfg.out_kernel == 1 and hd.cfg.shuffle == 2  # strokes stay at the full picture's pixel scale
